"""The outbox's claim loops: indexing jobs go ahead of a slow digest, and loops run side by side
(SQLite store, fake handlers)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from service.observability.metrics import Metrics
from service.storage.sql.database import SqlDatabase
from service.workers.outbox import OutboxConfig, OutboxWorker

INDEX, DIGEST = "sync_memory", "digest_session"


class Gate:
    """A handler that records what it ran and, while ``held``, blocks until released."""

    def __init__(self, held: bool = False) -> None:
        self.done: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def __call__(self, tenant: str, subjects: Sequence[str]) -> None:
        self.started.set()
        await self.release.wait()
        self.done.extend(subjects)


async def queue(db: SqlDatabase, tenant: str, kind: str, subjects: list[str]) -> None:
    async with db.transaction() as r:
        await r.jobs.enqueue(tenant, kind, subjects)


async def drained(db: SqlDatabase, tenant: str) -> None:
    while True:
        async with db.transaction() as r:
            if (await r.jobs.stats(tenant)).pending == 0:
                return
        await asyncio.sleep(0.01)


async def until(condition: object, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


@asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[None]:
    """The worker's loops at work for the block; cancelled (as a stop is) after it."""
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def loops_worker(db: SqlDatabase, claims: Path, handlers: dict[str, Gate], batch_size: int = 8, **loops: int) -> OutboxWorker:
    config = OutboxConfig(batch_size=batch_size, poll_seconds=0.05, claims_dir=claims, priority_kinds=(INDEX,), **loops)
    return OutboxWorker(db, dict(handlers), Metrics(), config)


async def test_an_indexing_loop_runs_new_jobs_while_a_digest_holds_the_other_loop(db: SqlDatabase, tmp_path: Path) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    digest, index = Gate(held=True), Gate()
    worker = loops_worker(db, tmp_path, {INDEX: index, DIGEST: digest}, loops=1, priority_loops=1)
    await queue(db, tenant, DIGEST, ["session-1"])
    async with running(worker):
        await asyncio.wait_for(digest.started.wait(), 10)  # the any-kind loop is stuck in the digest
        await queue(db, tenant, INDEX, ["m1", "m2"])
        worker.wake()
        await until(lambda: index.done == ["m1", "m2"])
        assert digest.done == []  # still held: the index jobs did not wait for it
        digest.release.set()
        await until(lambda: digest.done == ["session-1"])
        await asyncio.wait_for(drained(db, tenant), 10)  # every job completed, none run twice
    assert index.done == ["m1", "m2"] and digest.done == ["session-1"]


async def test_without_an_indexing_loop_a_held_digest_holds_everything(db: SqlDatabase, tmp_path: Path) -> None:
    """The control of the test above: one loop for every kind waits out the digest."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    digest, index = Gate(held=True), Gate()
    worker = loops_worker(db, tmp_path, {INDEX: index, DIGEST: digest}, loops=1, priority_loops=0)
    await queue(db, tenant, DIGEST, ["session-1"])
    async with running(worker):
        await asyncio.wait_for(digest.started.wait(), 10)
        await queue(db, tenant, INDEX, ["m1"])
        worker.wake()
        await asyncio.sleep(0.3)
        assert index.done == []
        digest.release.set()
        await until(lambda: index.done == ["m1"])


async def test_loops_of_one_worker_share_one_claim_identity_and_never_run_a_job_twice(db: SqlDatabase, tmp_path: Path) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    index = Gate()
    worker = loops_worker(db, tmp_path, {INDEX: index}, batch_size=4, loops=2, priority_loops=2)
    subjects = [f"m{i}" for i in range(60)]
    await queue(db, tenant, INDEX, subjects)
    async with running(worker):
        await until(lambda: len(index.done) >= len(subjects))
        slots = sorted(path.name for path in (tmp_path / "claims").glob("slot-*"))
    assert sorted(index.done) == sorted(subjects)  # each once
    assert slots == ["slot-0"]  # four loops took one identity: one slot
