"""The outbox store's contract (enqueue, leased claims, complete, retry, park, requeue, stats),
run on SQLite and on Postgres, including two claimers at once.

The jobs table is shared on Postgres: a test reads only its tenant's jobs, claims with large
limits, and where a limit itself is under test first leases every other ready job away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from service.storage.records import FailedJob, Job, QueueStats
from service.storage.sql.database import SqlDatabase
from service.storage.sql.models import JobRow

LEASE = 60.0
KIND = "sync_memory"


@pytest.fixture(autouse=True)
async def tidy(db: SqlDatabase, tenant: str) -> AsyncIterator[None]:
    """Leave no job of this test behind for the workers of later tests to pick up."""
    yield
    async with db.transaction() as r:
        await r.jobs.db.execute(delete(JobRow).where(JobRow.tenant_id.in_([tenant, tenant + "x"])))


@pytest.fixture
async def quiet(db: SqlDatabase, tenant: str) -> AsyncIterator[None]:
    """No other test's job is ready: they are leased aside for the test and released after it."""
    aside = f"aside-{tenant}"
    async with db.transaction() as r:
        await r.jobs.claim(datetime.now(UTC), 3600, 1_000_000, aside)
    yield
    async with db.transaction() as r:
        await r.jobs.release(aside)


async def enqueue(db: SqlDatabase, tenant: str, *subjects: str) -> list[int]:
    async with db.transaction() as r:
        return await r.jobs.enqueue(tenant, KIND, subjects)


async def claim(db: SqlDatabase, tenant: str, at: datetime | None = None, limit: int = 10_000, owner: str = "w1") -> list[Job]:
    """This test's jobs among those claimed at ``at`` (now by default)."""
    async with db.transaction() as r:
        jobs = await r.jobs.claim(at or datetime.now(UTC), LEASE, limit, owner)
    return [j for j in jobs if j.tenant_id == tenant]


async def stats(db: SqlDatabase, tenant: str | None) -> QueueStats:
    async with db.transaction() as r:
        return await r.jobs.stats(tenant)


class TestEnqueueAndClaim:
    async def test_enqueue_returns_the_new_ids_in_subject_order(self, db: SqlDatabase, tenant: str) -> None:
        before = datetime.now(UTC)
        ids = await enqueue(db, tenant, "a", "b", "c")
        after = datetime.now(UTC)
        assert len(ids) == 3 and ids == sorted(set(ids))
        assert await enqueue(db, tenant) == []
        jobs = await claim(db, tenant)
        assert [(j.id, j.tenant_id, j.kind, j.subject, j.attempts) for j in jobs] == [
            (ids[0], tenant, KIND, "a", 1), (ids[1], tenant, KIND, "b", 1), (ids[2], tenant, KIND, "c", 1),
        ]  # fmt: skip
        assert all(before <= j.created_at <= after for j in jobs)

    async def test_claims_lease_the_oldest_first_up_to_the_limit(self, db: SqlDatabase, tenant: str, quiet: None) -> None:
        ids = await enqueue(db, tenant, *"abcde")
        later = await enqueue(db, tenant + "x", "f")
        assert [j.id for j in await claim(db, tenant, limit=2)] == ids[:2]
        assert [j.id for j in await claim(db, tenant, limit=2)] == ids[2:4]
        async with db.transaction() as r:
            rest = await r.jobs.claim(datetime.now(UTC), LEASE, 10, "w1")
        assert [(j.id, j.tenant_id) for j in rest] == [(ids[4], tenant), (later[0], tenant + "x")]

    async def test_a_claimed_job_is_not_claimable_until_its_lease_runs_out(self, db: SqlDatabase, tenant: str) -> None:
        ids = await enqueue(db, tenant, "a", "b")
        now = datetime.now(UTC)
        assert [(j.id, j.attempts) for j in await claim(db, tenant, now)] == [(ids[0], 1), (ids[1], 1)]
        assert await claim(db, tenant, now) == []
        assert await claim(db, tenant, now + timedelta(seconds=LEASE - 1)) == []
        again = await claim(db, tenant, now + timedelta(seconds=LEASE + 1), owner="w2")
        assert [(j.id, j.attempts) for j in again] == [(ids[0], 2), (ids[1], 2)]  # the lapsed try counts
        assert await claim(db, tenant, now + timedelta(seconds=LEASE + 2)) == []  # leased again, anew

    async def test_a_claim_of_some_kinds_leaves_the_others(self, db: SqlDatabase, tenant: str) -> None:
        first = await enqueue(db, tenant, "a")
        async with db.transaction() as r:
            digest = await r.jobs.enqueue(tenant, "digest_session", ["s1"])
        second = await enqueue(db, tenant, "b")
        async with db.transaction() as r:
            taken = await r.jobs.claim(datetime.now(UTC), LEASE, 10_000, "w1", [KIND])
        assert [j.id for j in taken if j.tenant_id == tenant] == first + second
        assert {j.kind for j in taken} == {KIND}
        assert [j.id for j in await claim(db, tenant)] == digest  # a claim of any kind gets the rest

    async def test_a_coalesced_enqueue_adds_no_second_waiting_job(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            first = await r.jobs.enqueue(tenant, KIND, ["a", "b", "a"], coalesce=True)
            assert len(first) == 2  # a subject once, even within one call
            assert await r.jobs.enqueue(tenant, KIND, ["a", "c"], coalesce=True) != []
            assert len(await r.jobs.enqueue(tenant, KIND, ["a"])) == 1  # without coalesce: always
        assert sorted(j.subject for j in await claim(db, tenant)) == ["a", "a", "b", "c"]
        async with db.transaction() as r:  # claimed (running, maybe reading the old state): a new one
            again = await r.jobs.enqueue(tenant, KIND, ["a", "b"], coalesce=True)
            await r.jobs.retry(again[0], "later", datetime.now(UTC) + timedelta(hours=1))
        async with db.transaction() as r:  # one waiting on a retry delay runs too late: a new one
            assert len(await r.jobs.enqueue(tenant, KIND, ["a", "b"], coalesce=True)) == 1
            assert await r.jobs.enqueue(tenant + "x", KIND, ["b"], coalesce=True) != []  # another tenant's own
        assert len(again) == 2

    async def test_a_job_not_yet_available_is_not_claimed(self, db: SqlDatabase, tenant: str) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        await enqueue(db, tenant, "a")
        assert await claim(db, tenant, before) == []
        assert len(await claim(db, tenant)) == 1


class TestOutcomes:
    async def test_complete_removes_the_jobs(self, db: SqlDatabase, tenant: str) -> None:
        ids = await enqueue(db, tenant, "a", "b", "c")
        now = datetime.now(UTC)
        await claim(db, tenant, now)
        async with db.transaction() as r:
            await r.jobs.complete([ids[0], ids[2]])
            await r.jobs.complete([])
        assert [j.id for j in await claim(db, tenant, now + timedelta(seconds=LEASE + 1))] == [ids[1]]
        assert (await stats(db, tenant)).pending == 1
        async with db.transaction() as r:
            await r.jobs.complete([ids[1]])
        assert await stats(db, tenant) == QueueStats(pending=0, failed=0, oldest_pending=None)

    async def test_retry_hides_the_job_until_then_and_records_the_error(self, db: SqlDatabase, tenant: str) -> None:
        (job_id,) = await enqueue(db, tenant, "a")
        now = datetime.now(UTC)
        await claim(db, tenant, now)
        async with db.transaction() as r:
            await r.jobs.retry(job_id, "embedder timed out", now + timedelta(hours=1))
        async with db.transaction() as r:
            assert await r.jobs.db.scalar(select(JobRow.last_error).where(JobRow.id == job_id)) == "embedder timed out"
        assert await claim(db, tenant, now + timedelta(minutes=59)) == []  # the lease is long gone: the delay holds it
        assert (await stats(db, tenant)).pending == 1  # still pending, not parked
        retried = await claim(db, tenant, now + timedelta(hours=1))
        assert [(j.id, j.attempts) for j in retried] == [(job_id, 2)]

    async def test_fail_parks_the_job_and_failures_list_it_newest_first(self, db: SqlDatabase, tenant: str) -> None:
        a, b, c = await enqueue(db, tenant, "a", "b", "c")
        now = datetime.now(UTC)
        created = {j.id: j.created_at for j in await claim(db, tenant, now)}
        await claim(db, tenant, now + timedelta(seconds=LEASE + 1))  # a second attempt for each
        async with db.transaction() as r:
            await r.jobs.fail(a, "first error")
            await r.jobs.fail(c, "x" * 5000)
        assert [j.id for j in await claim(db, tenant, now + timedelta(days=365))] == [b]  # parked ones never
        async with db.transaction() as r:
            failures = await r.jobs.failures(tenant, 10)
            newest = await r.jobs.failures(tenant, 1)
            foreign = await r.jobs.failures(tenant + "x", 10)
        assert [f.id for f in failures] == [c, a]
        assert failures[1] == FailedJob(a, KIND, "a", 2, "first error", created[a])
        assert failures[0].attempts == 2 and failures[0].error is not None and failures[0].error.startswith("xxx")
        assert newest == failures[:1]
        assert foreign == []
        assert await stats(db, tenant) == QueueStats(
            pending=1, failed=2, oldest_pending=created[b], pending_by_kind={KIND: 1}, oldest_by_kind={KIND: created[b]}
        )
        everyone = await stats(db, None)
        assert everyone.pending >= 1 and everyone.failed >= 2

    async def test_stats_give_the_oldest_pending_job_and_keep_to_the_tenant(self, db: SqlDatabase, tenant: str) -> None:
        assert await stats(db, tenant) == QueueStats(pending=0, failed=0, oldest_pending=None)
        (first,) = await enqueue(db, tenant, "a")
        (second,) = await enqueue(db, tenant, "b")
        await enqueue(db, tenant + "x", "c")
        jobs = {j.id: j for j in await claim(db, tenant)}
        oldest = await stats(db, tenant)
        assert (oldest.pending, oldest.failed, oldest.oldest_pending) == (2, 0, jobs[first].created_at)  # leased: still pending
        assert oldest.oldest_pending is not None and oldest.oldest_pending.tzinfo is not None
        async with db.transaction() as r:
            await r.jobs.complete([first])
        assert await stats(db, tenant) == QueueStats(
            pending=1,
            failed=0,
            oldest_pending=jobs[second].created_at,
            pending_by_kind={KIND: 1},
            oldest_by_kind={KIND: jobs[second].created_at},
        )
        assert (await stats(db, tenant + "x")).pending == 1

    async def test_stats_count_pending_jobs_by_kind(self, db: SqlDatabase, tenant: str) -> None:
        await enqueue(db, tenant, "a", "b")
        async with db.transaction() as r:
            (digest,) = await r.jobs.enqueue(tenant, "digest_session", ["s1"])
            await r.jobs.enqueue(tenant, "refresh_profile", ["u1"])
        await claim(db, tenant)
        async with db.transaction() as r:
            await r.jobs.fail(digest, "boom")  # parked: failed, no longer pending
        counted = await stats(db, tenant)
        assert counted.pending_by_kind == {KIND: 2, "refresh_profile": 1}
        assert (counted.pending, counted.failed) == (3, 1)
        assert set(counted.oldest_by_kind) == {KIND, "refresh_profile"}  # the parked digest is not pending
        assert all(at.tzinfo is not None for at in counted.oldest_by_kind.values())
        assert counted.oldest_pending == min(counted.oldest_by_kind.values())


class TestRequeue:
    async def test_a_parked_job_is_pending_again_with_fresh_attempts(self, db: SqlDatabase, tenant: str) -> None:
        job_id, other = await enqueue(db, tenant, "a", "b")
        now = datetime.now(UTC)
        await claim(db, tenant, now)
        async with db.transaction() as r:
            await r.jobs.fail(job_id, "boom")
            assert not await r.jobs.requeue(tenant, other, now)  # pending, not parked
            assert not await r.jobs.requeue(tenant + "x", job_id, now)  # another tenant's
            assert not await r.jobs.requeue(tenant, job_id + 10_000_000, now)  # no such job
        async with db.transaction() as r:
            assert await r.jobs.requeue(tenant, job_id, now + timedelta(hours=1))
        assert ((s := await stats(db, tenant)).pending, s.failed) == (2, 0)
        async with db.transaction() as r:
            assert await r.jobs.failures(tenant, 10) == []
            assert not await r.jobs.requeue(tenant, job_id, now)  # once only
        assert [j.id for j in await claim(db, tenant, now + timedelta(minutes=59))] == [other]  # available from then
        requeued = await claim(db, tenant, now + timedelta(hours=1))
        assert [(j.id, j.attempts) for j in requeued] == [(job_id, 1)]


class TestConcurrentClaims:
    async def test_two_overlapping_claimers_never_share_a_job(self, db: SqlDatabase, tenant: str, quiet: None) -> None:
        """On Postgres the second claimer skips the rows the first holds locked (``SKIP LOCKED``) and
        returns while the first transaction is still open; on SQLite the single writer makes it wait
        for the first to commit (within the busy timeout), and it then sees the first's leases."""
        ids = await enqueue(db, tenant, *(f"s{i}" for i in range(20)))
        postgres = db.engine.dialect.name == "postgresql"
        now = datetime.now(UTC)
        first_claimed, second_done = asyncio.Event(), asyncio.Event()
        overlapped = False

        async def first() -> list[Job]:
            nonlocal overlapped
            async with db.transaction() as r:
                jobs = await r.jobs.claim(now, LEASE, 10, "first")
                first_claimed.set()
                try:  # hold the transaction open until the second is done (or briefly, where it must wait)
                    await asyncio.wait_for(second_done.wait(), 10.0 if postgres else 0.3)
                    overlapped = True
                except TimeoutError:
                    pass
            return jobs

        async def second() -> list[Job]:
            await first_claimed.wait()
            async with db.transaction() as r:
                jobs = await r.jobs.claim(now, LEASE, 10_000, "second")
            second_done.set()
            return jobs

        a, b = await asyncio.wait_for(asyncio.gather(first(), second()), 30)
        mine_a = [j.id for j in a if j.tenant_id == tenant]
        mine_b = [j.id for j in b if j.tenant_id == tenant]
        assert mine_a == ids[:10]
        assert mine_b == ids[10:]
        assert overlapped is postgres

    async def test_claimers_racing_in_a_loop_take_every_job_exactly_once(self, db: SqlDatabase, tenant: str, quiet: None) -> None:
        ids = await enqueue(db, tenant, *(f"s{i}" for i in range(40)))

        async def worker(owner: str) -> list[int]:
            taken: list[int] = []
            while True:
                async with db.transaction() as r:
                    jobs = await r.jobs.claim(datetime.now(UTC), LEASE, 3, owner)
                if not jobs:
                    return taken
                async with db.transaction() as r:
                    await r.jobs.complete([j.id for j in jobs])
                taken += [j.id for j in jobs if j.tenant_id == tenant]
                await asyncio.sleep(0)  # let the other claimer in between batches

        x, y = await asyncio.wait_for(asyncio.gather(worker("x"), worker("y")), 60)
        assert not set(x) & set(y)
        assert sorted(x + y) == ids
        assert await stats(db, tenant) == QueueStats(pending=0, failed=0, oldest_pending=None)
