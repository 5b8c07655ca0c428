"""A MessageBuffer over a remote store (Redis) that stays correct across the store's outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from service.storage.errors import BufferUnreachable
from service.storage.ports import MessageBuffer
from service.storage.records import BufferedMessage

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Stale keys dropped per round trip batch when the store answers again.
MEND_BATCH = 100


class MendingBuffer:
    """Delegates to ``inner`` and handles its outages:

    * a key whose append or delete failed is remembered as stale and deleted as soon as the store
      answers again (on this process's next buffer call or readiness probe), so a store that
      comes back with its old data never serves a buffer missing acknowledged messages: the
      next read rebuilds it from SQL;
    * after a failure, calls fail fast with ``BufferUnreachable`` for ``cooldown`` seconds rather
      than each waiting for a socket timeout (the domain then reads SQL).
    """

    def __init__(
        self,
        inner: MessageBuffer,
        errors: tuple[type[BaseException], ...],
        cooldown: float = 1.0,
        max_stale: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._errors = errors
        self._cooldown = cooldown
        self._max_stale = max_stale
        self._clock = clock
        self._stale: set[str] = set()
        self._resume_at = 0.0

    @property
    def stale(self) -> int:
        """Keys waiting to be dropped once the store answers."""
        return len(self._stale)

    def _mark(self, key: str | None) -> None:
        if key is None:
            return
        if len(self._stale) >= self._max_stale:
            log.error("too many stale buffers to track; this one may be served stale until its TTL")
            return
        self._stale.add(key)

    async def _mend(self) -> None:
        """Delete the stale keys (the store answered); raises on the store's error."""
        keys = sorted(self._stale)
        for start in range(0, len(keys), MEND_BATCH):
            chunk = keys[start : start + MEND_BATCH]
            await asyncio.gather(*(self._inner.delete(key) for key in chunk))
            self._stale.difference_update(chunk)
            log.info("dropped buffers left stale by an outage", extra={"buffers": len(chunk)})

    async def _guard(self, call: Callable[[], Awaitable[T]], key: str | None = None) -> T:
        """Run ``call`` after mending; on the store's failure mark ``key`` stale and back off."""
        if self._clock() < self._resume_at:
            self._mark(key)
            raise BufferUnreachable("the buffer store failed moments ago; not trying again yet")
        try:
            if self._stale:
                await self._mend()
            return await call()
        except self._errors as exc:
            self._resume_at = self._clock() + self._cooldown
            self._mark(key)
            raise BufferUnreachable(f"the buffer store did not answer ({exc!r})") from exc

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None:
        await self._guard(lambda: self._inner.append(key, messages), key)

    async def begin_fill(self, key: str) -> str:
        return await self._guard(lambda: self._inner.begin_fill(key))

    async def install(self, key: str, token: str, messages: Sequence[BufferedMessage]) -> bool:
        return await self._guard(lambda: self._inner.install(key, token, messages))

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        return await self._guard(lambda: self._inner.recent(key, limit))

    async def delete(self, key: str) -> None:
        await self._guard(lambda: self._inner.delete(key), key)

    async def ping(self) -> bool:
        """The store answers and holds no buffer left stale (probes ignore the back-off)."""
        if not await self._inner.ping():
            return False
        try:
            await self._mend()
        except self._errors:
            return False
        self._resume_at = 0.0
        return True

    async def close(self) -> None:
        await self._inner.close()
