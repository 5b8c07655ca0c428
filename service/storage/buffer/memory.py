"""The in-process short-term buffer (embedded default): one bounded deque per session."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.storage.buffer.codec import unique
from service.storage.records import BufferedMessage


@dataclass(slots=True)
class _Entry:
    messages: deque[BufferedMessage]
    touched: float


class InProcessBuffer:
    """Implements ``MessageBuffer`` in memory; bounded in messages per session and in sessions."""

    def __init__(
        self,
        max_messages: int,
        ttl_seconds: int,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cap = max_messages
        self._ttl = ttl_seconds
        self._max_sessions = max_sessions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._fills: dict[str, str] = {}

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._ttl and self._clock() - entry.touched > self._ttl:
            del self._entries[key]
            return None
        return entry

    def _touch(self, key: str, entry: _Entry) -> None:
        entry.touched = self._clock()
        self._entries.move_to_end(key)

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None:
        entry = self._live(key)
        if entry is None:
            self._fills.pop(key, None)
            return
        entry.messages.extend(messages)
        self._touch(key, entry)

    async def begin_fill(self, key: str) -> str:
        token = uuid.uuid4().hex
        self._fills[key] = token
        return token

    async def install(self, key: str, token: str, messages: Sequence[BufferedMessage]) -> bool:
        if self._fills.get(key) != token:
            return False
        del self._fills[key]
        if self._live(key) is None:
            self._entries[key] = _Entry(deque(messages, maxlen=self._cap), self._clock())
            while len(self._entries) > self._max_sessions:
                self._entries.popitem(last=False)
        return True

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        entry = self._live(key)
        if entry is None:
            return None
        self._touch(key, entry)
        return unique(list(entry.messages))[-limit:] if limit > 0 else []

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)
        self._fills.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._fills.clear()
