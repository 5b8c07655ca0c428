"""The outbox isolates failing jobs by bisecting their group (SQLite store, a fake handler)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from service.observability.metrics import Metrics
from service.storage.sql.database import SqlDatabase
from service.workers.outbox import OutboxConfig, OutboxWorker

JOBS = 64


class Flaky:
    """A handler that fails any group holding a bad subject (or every group)."""

    def __init__(self, bad: set[str] | None = None) -> None:
        self.bad = bad
        self.calls: list[int] = []
        self.done: set[str] = set()

    async def __call__(self, tenant: str, subjects: Sequence[str]) -> None:
        self.calls.append(len(subjects))
        if self.bad is None or self.bad & set(subjects):
            raise ValueError("refused")
        self.done |= set(subjects)


async def run(db: SqlDatabase, handler: Flaky, tmp_path: Path, max_attempts: int = 10) -> Metrics:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as r:
        await r.jobs.enqueue(tenant, "k", [f"s{i}" for i in range(JOBS)])
    metrics = Metrics()
    config = OutboxConfig(batch_size=JOBS, max_attempts=max_attempts, claims_dir=tmp_path)
    worker = OutboxWorker(db, {"k": handler}, metrics, config)
    try:
        assert await worker.run_once() == JOBS
    finally:
        worker.give_up_ownership()
    return metrics


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"kind": "k"})
    return value or 0.0


async def test_one_bad_job_fails_alone(db: SqlDatabase, tmp_path: Path) -> None:
    handler = Flaky(bad={"s17"})
    metrics = await run(db, handler, tmp_path)
    assert handler.done == {f"s{i}" for i in range(JOBS)} - {"s17"}
    assert len(handler.calls) == 1 + 2 * 6  # the group, then two halves per level down to one job
    assert sample(metrics, "memory_jobs_completed_total") == JOBS - 1
    assert sample(metrics, "memory_job_retries_total") == 1
    async with db.transaction() as r:
        stats = await r.jobs.stats()
    assert (stats.pending, stats.failed) == (1, 0)


async def test_a_bad_job_is_parked_after_its_last_attempt(db: SqlDatabase, tmp_path: Path) -> None:
    await run(db, Flaky(bad={"s0", "s63"}), tmp_path, max_attempts=1)
    async with db.transaction() as r:
        stats = await r.jobs.stats()
    assert (stats.pending, stats.failed) == (0, 2)


async def test_when_everything_fails_the_bisection_stops_early(db: SqlDatabase, tmp_path: Path) -> None:
    handler = Flaky(bad=None)
    metrics = await run(db, handler, tmp_path)
    assert len(handler.calls) <= 3 * JOBS.bit_length()  # not 2 * JOBS - 1 single runs
    assert sample(metrics, "memory_job_retries_total") == JOBS
    async with db.transaction() as r:
        stats = await r.jobs.stats()
    assert stats.pending == JOBS
