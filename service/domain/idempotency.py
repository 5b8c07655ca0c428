"""``Idempotency-Key`` on POSTs: a retry gets the first answer back and stores nothing twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from service.domain import clock
from service.domain.errors import IdempotencyConflict, InvalidInput
from service.storage.ports import Database
from service.storage.records import StoredAnswer

#: A key whose first request is still running after this long belongs to a dead process.
STALE_SECONDS = 60.0
MAX_KEY_CHARS = 255


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests the same request (the key must not be reused for another)."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return key


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    media_type: str | None


def storable(status: int) -> bool:
    """Answers a retry should see again: not server errors, conflicts or throttling (retry those)."""
    return status < 500 and status not in (409, 429)


class IdempotencyService:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds

    async def begin(self, tenant_id: str, key: str, fingerprint: str) -> Answer | None:
        """None when this request should run (and then ``finish`` or ``release``), else the first answer."""
        now = clock.now()
        async with self._db.transaction() as repos:
            found: StoredAnswer | None = await repos.answers.claim(
                tenant_id, key, fingerprint, now, now - timedelta(seconds=STALE_SECONDS)
            )
        if found is None:
            return None
        if found.fingerprint != fingerprint:
            raise InvalidInput("this Idempotency-Key was used with another request (method, path or body)")
        if found.status is None:
            raise IdempotencyConflict("a request with this Idempotency-Key is still running; retry shortly")
        return Answer(found.status, found.body, found.media_type)

    async def finish(self, tenant_id: str, key: str, answer: Answer) -> None:
        async with self._db.transaction() as repos:
            if storable(answer.status):
                await repos.answers.finish(tenant_id, key, answer.status, answer.body, answer.media_type)
            else:
                await repos.answers.release(tenant_id, key)

    async def release(self, tenant_id: str, key: str) -> None:
        async with self._db.transaction() as repos:
            await repos.answers.release(tenant_id, key)

    async def purge(self) -> int:
        """Forget answers older than the retention (``MEMORY_IDEMPOTENCY_TTL_SECONDS``)."""
        async with self._db.transaction() as repos:
            return await repos.answers.purge(clock.now() - timedelta(seconds=self._ttl))
