"""The tenant, API key, idempotent answer and retention stores' contract, on SQLite and on Postgres.

Several of these read or purge across tenants; on the shared Postgres tables a test gives its
rows ids that start with its tenant id (so nobody else's sort between them) and times far in
the past that no other test uses (so a purge takes only its own rows)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.domain import records
from service.storage.records import (
    ApiKeyRecord,
    MemoryQuery,
    MemoryRecord,
    MessageQuery,
    StoredAnswer,
    TenantRecord,
)
from service.storage.sql.database import SqlDatabase
from tests.contract.test_memory_store import memory
from tests.contract.test_sql_store import T0, message, session

#: Times no other test uses: purges before them take only this file's rows.
ANCIENT = datetime(1902, 7, 8, 9, 10, 11, 654321, tzinfo=UTC)


def key(tenant: str, kid: str, *, role: str = "admin", name: str | None = "ci") -> ApiKeyRecord:
    secret_hash = hashlib.sha256(f"{tenant}/{kid}".encode()).hexdigest()
    return ApiKeyRecord(f"{tenant}-{kid}", tenant, role, name, secret_hash, f"msk_{kid}"[:16], T0)


class TestTenants:
    async def test_insert_get_and_a_taken_id(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            assert await r.tenants.insert(TenantRecord(tenant, T0))
            assert not await r.tenants.insert(TenantRecord(tenant, T0 + timedelta(days=1)))
            assert await r.tenants.insert(TenantRecord(tenant + "-b", T0))  # the transaction goes on
        async with db.transaction() as r:
            assert await r.tenants.get(tenant) == TenantRecord(tenant, T0)
            assert await r.tenants.get(tenant + "-b") == TenantRecord(tenant + "-b", T0)
            assert await r.tenants.get(tenant + "-none") is None

    async def test_list_pages_in_id_order_after_an_id(self, db: SqlDatabase, tenant: str) -> None:
        names = [f"{tenant}-{c}" for c in "abcde"]
        async with db.transaction() as r:
            for name in reversed(names):
                await r.tenants.insert(TenantRecord(name, T0))
        async with db.transaction() as r:
            first = await r.tenants.list(tenant, 2)
            second = await r.tenants.list(first[-1].id, 2)
            third = await r.tenants.list(second[-1].id, 1)
            start = await r.tenants.list(None, 3)
        assert [t.id for t in first + second + third] == names
        assert len(start) == 3 and [t.id for t in start] == sorted(t.id for t in start)
        assert start[0].id <= names[0]


class TestKeys:
    async def test_insert_then_by_hash_round_trips(self, db: SqlDatabase, tenant: str) -> None:
        k = key(tenant, "k1", role="reader", name=None)
        async with db.transaction() as r:
            await r.keys.insert(k)
        async with db.transaction() as r:
            assert await r.keys.by_hash(k.secret_hash) == k
            assert await r.keys.by_hash(hashlib.sha256(b"unknown").hexdigest()) is None

    async def test_list_pages_by_id_of_one_tenant_or_all(self, db: SqlDatabase, tenant: str) -> None:
        mine = [key(tenant, f"k{i}") for i in range(3)]
        theirs = key(tenant + "x", "k9")  # its id starts with the same prefix: listed after mine
        async with db.transaction() as r:
            for k in [theirs, *reversed(mine)]:
                await r.keys.insert(k)
        async with db.transaction() as r:
            assert await r.keys.list(tenant, None, 10) == mine
            assert await r.keys.list(tenant, mine[0].id, 1) == [mine[1]]
            assert await r.keys.list(tenant, mine[2].id, 10) == []
            assert await r.keys.list(tenant + "x", None, 10) == [theirs]
            every = await r.keys.list(None, mine[0].id, 3)
        assert every == [mine[1], mine[2], theirs]

    async def test_revoke_is_idempotent_and_keeps_the_first_time(self, db: SqlDatabase, tenant: str) -> None:
        k = key(tenant, "k1")
        first, later = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
        async with db.transaction() as r:
            await r.keys.insert(k)
        async with db.transaction() as r:
            assert await r.keys.revoke(k.id, first) == replace(k, revoked_at=first)
            assert (await r.keys.revoke(k.id, later)).revoked_at == first  # type: ignore[union-attr]
            assert await r.keys.revoke(f"{tenant}-none", first) is None
        async with db.transaction() as r:
            revoked = await r.keys.by_hash(k.secret_hash)  # a revoked key is still found (to refuse it)
        assert revoked is not None and revoked.revoked_at == first
        assert (revoked.id, revoked.tenant_id, revoked.role) == (k.id, k.tenant_id, k.role)


class TestAnswers:
    async def test_the_first_claimer_owns_the_key_then_others_see_it_running(self, db: SqlDatabase, tenant: str) -> None:
        stale_before = T0 - timedelta(minutes=5)
        async with db.transaction() as r:
            assert await r.answers.claim(tenant, "k1", "fp1", T0, stale_before) is None
        async with db.transaction() as r:
            running = await r.answers.claim(tenant, "k1", "fp2", T0 + timedelta(seconds=1), stale_before)
            elsewhere = await r.answers.claim(tenant + "x", "k1", "fp2", T0, stale_before)
        assert running == StoredAnswer("fp1", None, b"", None, T0)
        assert elsewhere is None  # keys are per tenant

    async def test_a_finished_answer_is_replayed(self, db: SqlDatabase, tenant: str) -> None:
        stale_before = T0 - timedelta(minutes=5)
        body = b'{"id": "m1"}\x00\xff'
        async with db.transaction() as r:
            await r.answers.claim(tenant, "k1", "fp1", T0, stale_before)
            await r.answers.finish(tenant, "k1", 201, body, "application/json")
        async with db.transaction() as r:
            replay = await r.answers.claim(tenant, "k1", "fp1", T0 + timedelta(hours=1), T0 + timedelta(minutes=55))
            await r.answers.release(tenant, "k1")  # only a running record is released
        async with db.transaction() as r:
            again = await r.answers.claim(tenant, "k1", "fp1", T0 + timedelta(hours=1), T0 + timedelta(minutes=55))
        assert replay == StoredAnswer("fp1", 201, body, "application/json", T0)  # finished: never taken over
        assert again == replay

    async def test_a_released_key_can_be_claimed_again(self, db: SqlDatabase, tenant: str) -> None:
        stale_before = T0 - timedelta(minutes=5)
        async with db.transaction() as r:
            await r.answers.claim(tenant, "k1", "fp1", T0, stale_before)
        async with db.transaction() as r:
            await r.answers.release(tenant, "k1")
            await r.answers.release(tenant, "k-none")
        async with db.transaction() as r:
            assert await r.answers.claim(tenant, "k1", "fp2", T0 + timedelta(seconds=5), stale_before) is None
        async with db.transaction() as r:
            assert await r.answers.claim(tenant, "k1", "fp3", T0, stale_before) == StoredAnswer(
                "fp2", None, b"", None, T0 + timedelta(seconds=5)
            )

    async def test_a_stale_running_record_is_taken_over(self, db: SqlDatabase, tenant: str) -> None:
        later = T0 + timedelta(minutes=10)
        async with db.transaction() as r:
            await r.answers.claim(tenant, "k1", "fp1", T0, T0 - timedelta(minutes=5))
        async with db.transaction() as r:  # started at T0, stale from T0 + 1 µs on
            fresh = await r.answers.claim(tenant, "k1", "fp2", later, T0)
            taken = await r.answers.claim(tenant, "k1", "fp2", later, T0 + timedelta(microseconds=1))
        async with db.transaction() as r:
            now_running = await r.answers.claim(tenant, "k1", "fp3", later, T0 + timedelta(minutes=5))
        assert fresh == StoredAnswer("fp1", None, b"", None, T0)  # started exactly at the cut-off: not stale
        assert taken is None
        assert now_running == StoredAnswer("fp2", None, b"", None, later)  # the new owner's record, restarted

    async def test_purge_removes_answers_created_before_and_counts_them(self, db: SqlDatabase, tenant: str) -> None:
        stale_before = ANCIENT - timedelta(days=1)
        async with db.transaction() as r:
            for i in range(3):
                await r.answers.claim(tenant, f"k{i}", "fp", ANCIENT + timedelta(hours=i), stale_before)
            await r.answers.finish(tenant, "k0", 200, b"{}", "application/json")
        async with db.transaction() as r:
            assert await r.answers.purge(ANCIENT + timedelta(hours=1, microseconds=1)) == 2
            assert await r.answers.purge(ANCIENT + timedelta(hours=1, microseconds=1)) == 0
        async with db.transaction() as r:
            assert await r.answers.claim(tenant, "k0", "fp", ANCIENT, stale_before) is None  # gone: a new run
            kept = await r.answers.claim(tenant, "k2", "other", ANCIENT, stale_before)
        assert kept == StoredAnswer("fp", None, b"", None, ANCIENT + timedelta(hours=2))


class TestRetention:
    async def test_purge_messages_oldest_first_in_batches(self, db: SqlDatabase, tenant: str) -> None:
        other = tenant + "x"
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1", at=ANCIENT))
            await r.sessions.insert(session(tenant, "s2", at=ANCIENT))
            await r.sessions.insert(session(other, "s1", at=ANCIENT))
            await r.messages.insert_many([
                message(tenant, "s1", "m3", ANCIENT + timedelta(minutes=3)),
                message(other, "s1", "m1", ANCIENT + timedelta(minutes=1)),
                message(tenant, "s2", "m2", ANCIENT + timedelta(minutes=2)),
                message(tenant, "s1", "m4", ANCIENT + timedelta(minutes=4)),
                message(tenant, "s1", "kept", ANCIENT + timedelta(minutes=5)),
            ])  # fmt: skip
        before = ANCIENT + timedelta(minutes=5)  # exclusive: "kept" was created at it
        async with db.transaction() as r:
            first = await r.retention.purge_messages(before, 2)
        async with db.transaction() as r:
            second = await r.retention.purge_messages(before, 10)
            third = await r.retention.purge_messages(before, 10)
        assert first == [(other, "s1"), (tenant, "s2")]
        assert second == [(tenant, "s1"), (tenant, "s1")]
        assert third == []
        async with db.transaction() as r:
            left = await r.messages.list(MessageQuery(tenant, "s1", limit=10))
            other_left = await r.messages.list(MessageQuery(other, "s1", limit=10))
            assert await r.sessions.get(tenant, "s2") is not None  # sessions stay, emptied
        assert [m.content for m in left.items] == ["kept"]
        assert other_left.items == []

    async def test_purge_memories_oldest_first_with_their_history_and_terms(self, db: SqlDatabase, tenant: str) -> None:
        other = tenant + "x"

        def old(owner: str, name: str, minutes: int) -> MemoryRecord:
            at = ANCIENT + timedelta(minutes=minutes)
            return memory(owner, f"{tenant}-{name}", created_at=at, updated_at=at, event_time=at)

        made = [old(tenant, "c", 3), old(other, "a", 1), old(tenant, "b", 2), old(tenant, "kept", 4)]
        async with db.transaction() as r:
            await r.memories.insert_many(made)
            await r.versions.add(tenant, [records.version(m, "created", {}, m.created_at) for m in made if m.tenant_id == tenant])
            await r.versions.add(other, [records.version(made[1], "created", {}, ANCIENT)])
            for m in made:
                await r.terms.add(m.tenant_id, m.user_id, m.id, ["tea"])
        before = ANCIENT + timedelta(minutes=4)
        async with db.transaction() as r:
            first = await r.retention.purge_memories(before, 2)
        async with db.transaction() as r:
            second = await r.retention.purge_memories(before, 10)
            third = await r.retention.purge_memories(before, 10)
        assert first == [(other, f"{tenant}-a"), (tenant, f"{tenant}-b")]
        assert second == [(tenant, f"{tenant}-c")]
        assert third == []
        async with db.transaction() as r:
            alive = await r.memories.list(MemoryQuery(tenant, limit=10, alive_at=ANCIENT))
            assert [m.id for m in alive.items] == [f"{tenant}-kept"]
            assert await r.versions.history(tenant, f"{tenant}-b") == []
            assert await r.versions.history(other, f"{tenant}-a") == []
            assert [v.op for v in await r.versions.history(tenant, f"{tenant}-kept")] == ["created"]
            assert await r.terms.lookup(tenant, "u1", ["tea"], 10) == {f"{tenant}-kept": 1}
            assert await r.terms.lookup(other, "u1", ["tea"], 10) == {}
