"""Per-key rate limits: so many requests a minute, then 429 with the seconds until the next window."""

from __future__ import annotations

import time

from service.domain.auth import Principal
from service.domain.errors import RateLimited
from service.storage.ports import RateCounter

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, counter: RateCounter, per_minute: int) -> None:
        self._counter = counter
        self._per_minute = per_minute

    async def check(self, principal: Principal) -> None:
        """Count one request of the principal's key; ``RateLimited`` past the limit (0 = no limit)."""
        if self._per_minute <= 0:
            return
        bucket = f"key:{principal.key_id}" if principal.key_id else f"tenant:{principal.tenant_id}"
        if await self._counter.hit(bucket, WINDOW_SECONDS) > self._per_minute:
            retry_after = WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS
            raise RateLimited(f"more than {self._per_minute} requests a minute for this key", max(1, retry_after))
