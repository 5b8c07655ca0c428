"""The outbox worker: claims queued jobs, runs them, retries with backoff, and reports the queue."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from service.domain.clock import now
from service.domain.upkeep import queue_state
from service.observability.metrics import Metrics
from service.storage.ports import Database
from service.storage.records import Job
from service.workers.supervisor import stopping

log = logging.getLogger(__name__)

#: A handler runs all claimed jobs of one kind and tenant: (tenant_id, subjects).
Handler = Callable[[str, Sequence[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    batch_size: int = 64
    poll_seconds: float = 0.5
    lease_seconds: float = 60.0
    max_attempts: int = 10
    base_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0


class OutboxWorker:
    def __init__(self, db: Database, handlers: dict[str, Handler], metrics: Metrics, config: OutboxConfig) -> None:
        self._db = db
        self._handlers = handlers
        self._metrics = metrics
        self._config = config
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """New jobs were committed: look now rather than at the next poll."""
        self._wakeup.set()

    async def run_once(self) -> int:
        """Claim and run one batch; returns how many jobs were claimed."""
        async with self._db.transaction() as repos:
            jobs = await repos.jobs.claim(now(), self._config.lease_seconds, self._config.batch_size)
        groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
        for job in jobs:
            groups[(job.kind, job.tenant_id)].append(job)
        for (kind, tenant), group in groups.items():
            await self._run_group(kind, tenant, group)
        await self.report()
        return len(jobs)

    async def _run_group(self, kind: str, tenant: str, jobs: list[Job]) -> None:
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {kind!r}")
            await handler(tenant, [j.subject for j in jobs])
        except Exception as exc:  # noqa: BLE001 - every failure is retried or recorded
            if stopping():
                raise
            log.warning("job batch failed", extra={"kind": kind, "jobs": len(jobs)}, exc_info=True)
            await self._reschedule(jobs, f"{type(exc).__name__}: {exc}")
            return
        async with self._db.transaction() as repos:
            await repos.jobs.complete([j.id for j in jobs])
        for _ in jobs:
            self._metrics.job_completed(kind)

    async def _reschedule(self, jobs: list[Job], error: str) -> None:
        async with self._db.transaction() as repos:
            for job in jobs:
                if job.attempts >= self._config.max_attempts:
                    await repos.jobs.fail(job.id, error)
                    self._metrics.job_failed(job.kind)
                else:
                    delay = min(self._config.max_backoff_seconds, self._config.base_backoff_seconds * 2 ** (job.attempts - 1))
                    await repos.jobs.retry(job.id, error, now() + timedelta(seconds=delay))
                    self._metrics.job_retried(job.kind)

    async def report(self) -> None:
        state = await queue_state(self._db)
        self._metrics.set_queue(state.pending, state.oldest_pending_age_seconds)

    async def run(self) -> None:
        """Work until cancelled: drain while there are jobs, then sleep until woken or the poll interval."""
        while True:
            try:
                claimed = await self.run_once()
            except Exception:  # noqa: BLE001 - a database blip must not stop the worker
                if stopping():
                    raise
                log.exception("outbox poll failed")
                claimed = 0
            if claimed:
                continue
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._config.poll_seconds)
            except TimeoutError:
                pass
