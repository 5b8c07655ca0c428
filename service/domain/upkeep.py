"""Periodic upkeep: purge expired memories, refresh the state gauges."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from service.domain.clock import now
from service.domain.document_index import SYNC_DOCUMENT
from service.domain.errors import NotFound
from service.domain.indexing import SYNC_MEMORY
from service.domain.memories import remove
from service.observability.metrics import Metrics
from service.storage.ports import Database
from service.storage.records import FailedJob, MemoryRecord


async def purge_expired(db: Database, batch: int = 500) -> int:
    """Delete expired memories (tombstoned as ``expired``) and queue their vectors for removal."""
    at = now()
    async with db.transaction() as repos:
        expired = await repos.upkeep.expired(at, batch)
        by_tenant: dict[str, list[MemoryRecord]] = defaultdict(list)
        for memory in expired:
            by_tenant[memory.tenant_id].append(memory)
        for memories in by_tenant.values():
            await remove(repos, memories, "expired", at)
    return len(expired)


async def refresh_state_gauges(db: Database, metrics: Metrics) -> None:
    """One grouped count per refresh interval (not per scrape)."""
    async with db.transaction() as repos:
        by_type = await repos.upkeep.count_by_type()
        sessions, messages = await repos.sessions.count(), await repos.messages.count()
    metrics.set_state_counts(sessions, messages, by_type)


#: Parked jobs listed by the queue state (the newest).
FAILURES_SHOWN = 20

#: The jobs that make writes searchable: their lag is how long a new memory waits to be found.
INDEXING_KINDS = (SYNC_MEMORY, SYNC_DOCUMENT)


@dataclass(frozen=True, slots=True)
class QueueState:
    pending: int
    failed: int
    oldest_pending_age_seconds: float | None
    failures: list[FailedJob]
    pending_by_kind: dict[str, int] = field(default_factory=dict)
    oldest_age_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def indexing_pending(self) -> int:
        return sum(self.pending_by_kind.get(kind, 0) for kind in INDEXING_KINDS)

    @property
    def indexing_lag_seconds(self) -> float | None:
        """The age of the oldest pending indexing job (None: none waits). Digests and profile
        refreshes may wait longer under load without any write waiting to be searchable."""
        return max((self.oldest_age_by_kind[k] for k in INDEXING_KINDS if k in self.oldest_age_by_kind), default=None)


async def queue_state(db: Database, tenant_id: str | None = None) -> QueueState:
    """How much background work waits (for one tenant, or all), and the age of the oldest job."""
    async with db.transaction() as repos:
        stats = await repos.jobs.stats(tenant_id)
        failures = await repos.jobs.failures(tenant_id, FAILURES_SHOWN) if tenant_id is not None else []
    at = now()
    age = (at - stats.oldest_pending).total_seconds() if stats.oldest_pending else None
    ages = {kind: (at - oldest).total_seconds() for kind, oldest in stats.oldest_by_kind.items()}
    return QueueState(stats.pending, stats.failed, age, failures, stats.pending_by_kind, ages)


async def retry_failed(db: Database, tenant_id: str, job_id: int) -> None:
    """Queue a tenant's parked job again, with fresh attempts; NotFound unless it is one."""
    async with db.transaction() as repos:
        if not await repos.jobs.requeue(tenant_id, job_id, now()):
            raise NotFound(f"no failed job {job_id}")
