"""Fixed-window hit counters for rate limits: in-process, or in Redis so every process shares them."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_PREFIX = "memsvc:rate:"


def _window_index(window: int) -> int:
    return int(time.time()) // window


class InProcessRateCounter:
    """Counters of this process only (the embedded default runs one process)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, bucket: str, window: int) -> int:
        index = _window_index(window)
        seen_index, count = self._counts.get(bucket, (index, 0))
        count = count + 1 if seen_index == index else 1
        self._counts[bucket] = (index, count)
        if len(self._counts) > 100_000:  # forget buckets of past windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        return count

    async def close(self) -> None:
        self._counts.clear()


class RedisRateCounter:
    """Counters in Redis (INCR with an expiry); when Redis is down, requests are let through."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def hit(self, bucket: str, window: int) -> int:
        key = f"{_PREFIX}{bucket}:{_window_index(window)}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limit counter unavailable, letting the request through: %s", exc)
            return 0
        return int(count)

    async def close(self) -> None:
        await self._client.aclose()


def open_rate_counter(redis_url: str | None) -> InProcessRateCounter | RedisRateCounter:
    """Shared counters in Redis when ``MEMORY_REDIS_URL`` is set, else this process's own."""
    if redis_url:
        return RedisRateCounter(Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2))
    return InProcessRateCounter()
