"""The outbox store's claims and their owners, on SQLite and on Postgres: a released owner's jobs
are claimable at once, and nobody else's claims are touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.storage.records import Job
from service.storage.sql.database import SqlDatabase

LEASE = 60.0


async def claim(db: SqlDatabase, tenant: str, owner: str) -> list[Job]:
    """Claim every ready job (the table is shared on Postgres) and keep this test's."""
    async with db.transaction() as r:
        jobs = await r.jobs.claim(datetime.now(UTC), LEASE, 10_000, owner)
    return [j for j in jobs if j.tenant_id == tenant]


async def test_release_frees_only_the_owners_claims(db: SqlDatabase, tenant: str) -> None:
    async with db.transaction() as r:
        mine = await r.jobs.enqueue(tenant, "sync_memory", ["a", "b"])
    assert [j.id for j in await claim(db, tenant, "dead")] == mine
    async with db.transaction() as r:
        theirs = await r.jobs.enqueue(tenant, "sync_memory", ["c"])
    assert [j.id for j in await claim(db, tenant, "alive")] == theirs
    assert await claim(db, tenant, "other") == []  # both leases run

    async with db.transaction() as r:
        assert await r.jobs.release("nobody") == 0
        assert await r.jobs.release("dead") >= 2
    again = await claim(db, tenant, "restarted")
    assert [(j.id, j.attempts) for j in again] == [(mine[0], 2), (mine[1], 2)]  # the crashed try counts
    assert await claim(db, tenant, "other") == []  # the live owner's job is still leased


async def test_finished_claims_leave_nothing_to_release(db: SqlDatabase, tenant: str) -> None:
    async with db.transaction() as r:
        await r.jobs.enqueue(tenant, "sync_memory", ["a", "b", "c"])
    a, b, c = await claim(db, tenant, "w1")
    async with db.transaction() as r:
        await r.jobs.complete([a.id])
        await r.jobs.retry(b.id, "boom", datetime.now(UTC) + timedelta(hours=1))
        await r.jobs.fail(c.id, "boom")
    async with db.transaction() as r:
        assert await r.jobs.release("w1") == 0
        stats = await r.jobs.stats(tenant)
    assert (stats.pending, stats.failed) == (1, 1)
