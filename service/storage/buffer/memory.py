"""The in-process short-term buffer (embedded default): one bounded deque per session."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.storage.records import BufferedMessage

_RACE_MARK_SECONDS = 30.0


@dataclass(slots=True)
class _Entry:
    messages: deque[BufferedMessage]
    touched: float = field(default_factory=time.monotonic)


class InProcessBuffer:
    """Implements ``MessageBuffer`` in memory; bounded in messages per session and in sessions."""

    def __init__(self, max_messages: int, ttl_seconds: int, max_sessions: int = 100_000) -> None:
        self._cap = max_messages
        self._ttl = ttl_seconds
        self._max_sessions = max_sessions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._written: dict[str, float] = {}

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._ttl and time.monotonic() - entry.touched > self._ttl:
            del self._entries[key]
            return None
        return entry

    def _touch(self, key: str, entry: _Entry) -> None:
        entry.touched = time.monotonic()
        self._entries.move_to_end(key)

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None:
        entry = self._live(key)
        if entry is None:
            self._written[key] = time.monotonic()
            return
        entry.messages.extend(messages)
        self._touch(key, entry)

    async def install(self, key: str, messages: Sequence[BufferedMessage]) -> bool:
        written = self._written.pop(key, None)
        if written is not None and time.monotonic() - written < _RACE_MARK_SECONDS:
            return False
        if self._live(key) is None:
            self._entries[key] = _Entry(deque(messages, maxlen=self._cap))
            while len(self._entries) > self._max_sessions:
                self._entries.popitem(last=False)
        return True

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        entry = self._live(key)
        if entry is None:
            return None
        self._touch(key, entry)
        items = list(entry.messages)
        return items[-limit:] if limit > 0 else []

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)
        self._written.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._written.clear()
