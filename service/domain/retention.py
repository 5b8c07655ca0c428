"""The retention policy: messages and memories older than their retention leave every store.

``MEMORY_MESSAGE_RETENTION_DAYS`` and ``MEMORY_MEMORY_RETENTION_DAYS`` (0 keeps forever) are
applied by a background loop, in batches, oldest first: the SQL rows go (a memory with its
history and keyword terms), the memories' vectors follow through the outbox, and a session
that lost messages has its buffer dropped (it is rebuilt from what SQL still holds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from service.domain.clock import now
from service.domain.indexing import SYNC_MEMORY
from service.domain.sessions import buffer_key, drop_buffer
from service.observability.metrics import Metrics
from service.storage.ports import Database, MessageBuffer

BATCH = 1000
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Retention:
    message_days: int  # 0 keeps messages forever
    memory_days: int  # 0 keeps memories forever


class RetentionPolicy:
    def __init__(
        self, db: Database, buffer: MessageBuffer, retention: Retention, metrics: Metrics, wake: Callable[[], None]
    ) -> None:
        self._db = db
        self._buffer = buffer
        self._retention = retention
        self._metrics = metrics
        self._wake = wake

    async def apply(self) -> tuple[int, int]:
        """One pass: purge what is past retention; (messages, memories) removed."""
        messages = await self._messages() if self._retention.message_days > 0 else 0
        memories = await self._memories() if self._retention.memory_days > 0 else 0
        return messages, memories

    async def _messages(self) -> int:
        cutoff = now() - self._retention.message_days * DAY
        total = 0
        while True:
            async with self._db.transaction() as repos:
                gone = await repos.retention.purge_messages(cutoff, BATCH)
            for tenant_id, session_id in sorted(set(gone)):
                await drop_buffer(self._buffer, buffer_key(tenant_id, session_id))
            purged = len(gone)
            total += purged
            self._metrics.retention_purged_records("messages", purged)
            if purged < BATCH:
                return total

    async def _memories(self) -> int:
        cutoff = now() - self._retention.memory_days * DAY
        total = 0
        while True:
            async with self._db.transaction() as repos:
                gone = await repos.retention.purge_memories(cutoff, BATCH)
                by_tenant: dict[str, list[str]] = defaultdict(list)
                for tenant_id, memory_id in gone:
                    by_tenant[tenant_id].append(memory_id)
                for tenant_id, ids in by_tenant.items():
                    await repos.jobs.enqueue(tenant_id, SYNC_MEMORY, ids)  # the vectors follow
            if gone:
                self._wake()
            total += len(gone)
            self._metrics.retention_purged_records("memories", len(gone))
            if len(gone) < BATCH:
                return total
