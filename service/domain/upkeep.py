"""Periodic upkeep: purge expired memories, refresh the state gauges."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from service.domain.clock import now
from service.domain.errors import NotFound
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


@dataclass(frozen=True, slots=True)
class QueueState:
    pending: int
    failed: int
    oldest_pending_age_seconds: float | None
    failures: list[FailedJob]
    pending_by_kind: dict[str, int] = field(default_factory=dict)


async def queue_state(db: Database, tenant_id: str | None = None) -> QueueState:
    """How much background work waits (for one tenant, or all), and the age of the oldest job."""
    async with db.transaction() as repos:
        stats = await repos.jobs.stats(tenant_id)
        failures = await repos.jobs.failures(tenant_id, FAILURES_SHOWN) if tenant_id is not None else []
    age = (now() - stats.oldest_pending).total_seconds() if stats.oldest_pending else None
    return QueueState(stats.pending, stats.failed, age, failures, stats.pending_by_kind)


async def retry_failed(db: Database, tenant_id: str, job_id: int) -> None:
    """Queue a tenant's parked job again, with fresh attempts; NotFound unless it is one."""
    async with db.transaction() as repos:
        if not await repos.jobs.requeue(tenant_id, job_id, now()):
            raise NotFound(f"no failed job {job_id}")
