"""The outbox worker: claims queued jobs, runs them, retries with backoff, and reports the queue.

A handler runs a group of jobs all or nothing. When a group fails, the worker splits it in halves
and runs each again, down to single jobs, so one poisoned record (a payload the vector engine
refuses, say) fails alone: its neighbours complete, and only its job is retried with backoff and
parked as ``failed`` after ``max_attempts``. A failure that is not about one record (the engine
is down) fails every half too; a budget of failing runs per group keeps that from costing more
than a few extra calls before the rest of the group is rescheduled.

Claims are made under a :class:`ClaimOwner` identity; when the process holds that identity's
slot lock, it first releases the claims left under it by a crashed predecessor.

Claim loops run side by side, as that many workers would: ``loops`` that take any kind of job,
oldest first, and ``priority_loops`` that take only ``priority_kinds`` (indexing), so a new memory
is made searchable while digests are still queued, and while one batch is being embedded (in the
embedder's thread) another's SQL reads and writes run on the event loop. With one loop for
everything, digests took more of its time than indexing, and the model sat idle through every
batch's SQL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from service.domain.clock import now
from service.domain.upkeep import queue_state
from service.observability.metrics import Metrics
from service.storage.ports import Database
from service.storage.records import Job
from service.workers.claims import ClaimOwner, claim_owner
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
    #: Where the claim-owner slots live (the data folder); None: claims are never released early.
    claims_dir: Path | None = None
    #: Claim loops that take any kind of job, and loops that take only ``priority_kinds``.
    loops: int = 1
    priority_loops: int = 2
    priority_kinds: tuple[str, ...] = ()
    #: Longest gap between queue reports (depth and oldest age) while batches keep coming.
    report_seconds: float = 1.0


class OutboxWorker:
    def __init__(self, db: Database, handlers: dict[str, Handler], metrics: Metrics, config: OutboxConfig) -> None:
        self._db = db
        self._handlers = handlers
        self._metrics = metrics
        self._config = config
        self._wakeup = asyncio.Event()
        self._owner: ClaimOwner | None = None
        self._owning = asyncio.Lock()  # the loops share one claim identity, taken once
        self._reported_at = -math.inf
        metrics.declare_job_kinds(handlers)

    def wake(self) -> None:
        """New jobs were committed: look now rather than at the next poll."""
        self._wakeup.set()

    async def take_ownership(self) -> int:
        """Take a claim identity; when no live process can hold it, release the claims a crashed
        predecessor left under it (they are claimable now). Returns how many were released."""
        owner = self._owner or claim_owner(self._config.claims_dir)
        released = 0
        if owner.reclaim:
            try:
                async with self._db.transaction() as repos:
                    released = await repos.jobs.release(owner.id)
            except BaseException:
                owner.close()  # the next attempt takes the slot again and retries the release
                raise
        self._owner = owner
        if released:
            log.info("released the claims of a previous process", extra={"jobs": released, "owner": self._owner.id})
        return released

    def give_up_ownership(self) -> None:
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    async def run_once(self, kinds: Sequence[str] | None = None) -> int:
        """Claim and run one batch (of ``kinds``, or any); returns how many jobs were claimed."""
        if self._owner is None:
            async with self._owning:
                if self._owner is None:
                    await self.take_ownership()
        assert self._owner is not None
        async with self._db.transaction() as repos:
            jobs = await repos.jobs.claim(now(), self._config.lease_seconds, self._config.batch_size, self._owner.id, kinds)
        groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
        for job in jobs:
            groups[(job.kind, job.tenant_id)].append(job)
        for (kind, tenant), group in groups.items():
            await self._run_group(kind, tenant, group)
        short = 0 < len(jobs) < self._config.batch_size  # it may have emptied the queue: report it at once
        if short or time.monotonic() - self._reported_at >= self._config.report_seconds:
            await self.report()  # otherwise once a second, shared by the loops (idle ones too)
        return len(jobs)

    async def _run_group(self, kind: str, tenant: str, jobs: list[Job]) -> None:
        """Run the group; on failure, bisect it so only the failing jobs are rescheduled."""
        # Failing runs allowed: enough to isolate two bad jobs, few when everything fails.
        started = time.perf_counter()
        await self._bisect(kind, tenant, jobs, 2 * len(jobs).bit_length())
        log.debug("job group done", extra={"kind": kind, "jobs": len(jobs), "seconds": round(time.perf_counter() - started, 3)})

    async def _bisect(self, kind: str, tenant: str, jobs: list[Job], budget: int) -> int:
        """Run ``jobs``, then their halves if that failed; returns the failing runs still allowed."""
        error = await self._attempt(kind, tenant, jobs)
        if error is None:
            async with self._db.transaction() as repos:
                await repos.jobs.complete([j.id for j in jobs])
            for _ in jobs:
                self._metrics.job_completed(kind)
            return budget
        budget -= 1
        if len(jobs) == 1 or budget <= 0:
            await self._reschedule(jobs, error)
            return budget
        middle = len(jobs) // 2
        budget = await self._bisect(kind, tenant, jobs[:middle], budget)
        return await self._bisect(kind, tenant, jobs[middle:], budget)

    async def _attempt(self, kind: str, tenant: str, jobs: list[Job]) -> str | None:
        """Run the handler on these jobs; the error as text, or None when it succeeded."""
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {kind!r}")
            await handler(tenant, [j.subject for j in jobs])
        except Exception as exc:  # noqa: BLE001 - every failure is retried or recorded
            if stopping():
                raise
            log.warning("job batch failed", extra={"kind": kind, "jobs": len(jobs)}, exc_info=True)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _reschedule(self, jobs: list[Job], error: str) -> None:
        async with self._db.transaction() as repos:
            for job in jobs:
                self._metrics.job_failed(job.kind)
                if job.attempts >= self._config.max_attempts:
                    await repos.jobs.fail(job.id, error)
                    log.error("job parked as failed", extra={"job": job.id, "kind": job.kind, "subject": job.subject})
                else:
                    delay = min(self._config.max_backoff_seconds, self._config.base_backoff_seconds * 2 ** (job.attempts - 1))
                    await repos.jobs.retry(job.id, error, now() + timedelta(seconds=delay))
                    self._metrics.job_retried(job.kind)

    async def report(self) -> None:
        self._reported_at = time.monotonic()
        state = await queue_state(self._db)
        self._metrics.set_queue(state.pending, state.oldest_pending_age_seconds, state.indexing_lag_seconds)

    async def run(self) -> None:
        """Work until cancelled: each loop drains while there are jobs, then sleeps until woken or
        the poll interval."""
        config = self._config
        priority = config.priority_loops if config.priority_kinds else 0
        try:
            async with asyncio.TaskGroup() as loops:
                for _ in range(max(1, config.loops)):
                    loops.create_task(self._work(None))
                for _ in range(priority):
                    loops.create_task(self._work(config.priority_kinds))
        except BaseExceptionGroup:
            if stopping():  # a loop stopped mid-call with the error its backend gave: a stop all the same
                raise asyncio.CancelledError from None
            raise
        finally:
            self.give_up_ownership()

    async def _work(self, kinds: Sequence[str] | None) -> None:
        while True:
            try:
                claimed = await self.run_once(kinds)
            except Exception:  # noqa: BLE001 - a database blip must not stop the worker
                if stopping():
                    raise
                log.exception("outbox poll failed")
                claimed = 0
            if claimed:
                continue
            self._wakeup.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 a cancellation that lands as
            # wait_for's timeout fires is lost, and a loop of a stopped app went on claiming jobs
            # (seen with several loops: a job leased to it waited out its lease).
            try:
                async with asyncio.timeout(self._config.poll_seconds):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
