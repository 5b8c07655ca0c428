"""The SQL store contract, run on SQLite and on Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.storage.errors import InvalidCursor
from service.storage.records import MessageQuery, MessageRecord, SessionChanges, SessionQuery, SessionRecord
from service.storage.sql.database import SqlDatabase

T0 = datetime(2024, 5, 8, 13, 56, tzinfo=UTC)


def session(tenant: str, sid: str, user: str = "u1", at: datetime = T0) -> SessionRecord:
    return SessionRecord(tenant, sid, user, None, {"k": "v"}, at, at)


def message(tenant: str, sid: str, text: str, at: datetime) -> MessageRecord:
    return MessageRecord(tenant, sid, str(uuid.uuid4()), 0, "user", text, None, {}, at, len(text))


class TestSessions:
    async def test_insert_then_get_round_trips(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            assert await r.sessions.insert(session(tenant, "s1"))
        async with db.transaction() as r:
            got = await r.sessions.get(tenant, "s1")
        assert got == session(tenant, "s1")

    async def test_duplicate_id_is_refused_without_breaking_the_transaction(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            assert await r.sessions.insert(session(tenant, "s1"))
        async with db.transaction() as r:
            assert not await r.sessions.insert(session(tenant, "s1", user="other"))
            assert await r.sessions.insert(session(tenant, "s2"))
        async with db.transaction() as r:
            assert (await r.sessions.get(tenant, "s1")).user_id == "u1"  # type: ignore[union-attr]
            assert await r.sessions.get(tenant, "s2") is not None

    async def test_tenants_do_not_see_each_other(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            assert await r.sessions.insert(session(tenant + "x", "s1"))
        async with db.transaction() as r:
            page = await r.sessions.list(SessionQuery(tenant_id=tenant + "x", limit=10))
        assert [s.tenant_id for s in page.items] == [tenant + "x"]

    async def test_list_pages_newest_first_and_filters_by_user(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            for i in range(5):
                await r.sessions.insert(session(tenant, f"s{i}", user="u1" if i % 2 == 0 else "u2", at=T0 + timedelta(minutes=i)))
        seen: list[str] = []
        cursor = None
        while True:
            async with db.transaction() as r:
                page = await r.sessions.list(SessionQuery(tenant_id=tenant, limit=2, cursor=cursor))
            seen += [s.id for s in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ["s4", "s3", "s2", "s1", "s0"]
        async with db.transaction() as r:
            page = await r.sessions.list(SessionQuery(tenant_id=tenant, limit=10, user_id="u2"))
        assert [s.id for s in page.items] == ["s3", "s1"]

    async def test_update_changes_only_given_fields(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
        async with db.transaction() as r:
            updated = await r.sessions.update(tenant, "s1", SessionChanges(agent_id="bot", metadata={"a": 1}))
        assert updated is not None
        assert (updated.user_id, updated.agent_id, updated.metadata) == ("u1", "bot", {"a": 1})
        assert updated.updated_at > updated.created_at
        async with db.transaction() as r:
            assert await r.sessions.update(tenant, "missing", SessionChanges(agent_id="x")) is None

    async def test_delete_removes_the_sessions_messages(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            await r.messages.insert_many([message(tenant, "s1", "hi", T0)])
        async with db.transaction() as r:
            assert await r.sessions.delete(tenant, "s1")
            assert not await r.sessions.delete(tenant, "s1")
        async with db.transaction() as r:
            assert await r.messages.recent(tenant, "s1", 10) == []

    async def test_foreign_cursor_is_rejected(self, db: SqlDatabase, tenant: str) -> None:
        with pytest.raises(InvalidCursor):
            async with db.transaction() as r:
                await r.sessions.list(SessionQuery(tenant_id=tenant, limit=2, cursor="bm90LWEtY3Vyc29y"))


class TestMessages:
    async def _seed(self, db: SqlDatabase, tenant: str, n: int = 5) -> list[MessageRecord]:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            return await r.messages.insert_many(
                [message(tenant, "s1", f"m{i}", T0 + timedelta(seconds=i)) for i in range(n)]
            )

    async def test_insert_assigns_increasing_seq_and_keeps_fields(self, db: SqlDatabase, tenant: str) -> None:
        stored = await self._seed(db, tenant)
        seqs = [m.seq for m in stored]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert stored[2].content == "m2" and stored[2].created_at == T0 + timedelta(seconds=2)

    async def test_list_pages_in_both_orders(self, db: SqlDatabase, tenant: str) -> None:
        await self._seed(db, tenant)
        for newest_first, expected in ((False, ["m0", "m1", "m2", "m3", "m4"]), (True, ["m4", "m3", "m2", "m1", "m0"])):
            seen: list[str] = []
            cursor = None
            while True:
                query = MessageQuery(tenant_id=tenant, session_id="s1", limit=2, newest_first=newest_first, cursor=cursor)
                async with db.transaction() as r:
                    page = await r.messages.list(query)
                seen += [m.content for m in page.items]
                if not (cursor := page.next_cursor):
                    break
            assert seen == expected

    async def test_time_range_is_half_open(self, db: SqlDatabase, tenant: str) -> None:
        await self._seed(db, tenant)
        query = MessageQuery(
            tenant_id=tenant, session_id="s1", limit=10, after=T0 + timedelta(seconds=1), before=T0 + timedelta(seconds=3)
        )
        async with db.transaction() as r:
            page = await r.messages.list(query)
        assert [m.content for m in page.items] == ["m1", "m2"]

    async def test_recent_returns_the_newest_oldest_first(self, db: SqlDatabase, tenant: str) -> None:
        await self._seed(db, tenant)
        async with db.transaction() as r:
            recent = await r.messages.recent(tenant, "s1", 3)
        assert [m.content for m in recent] == ["m2", "m3", "m4"]

    async def test_a_failed_transaction_stores_nothing(self, db: SqlDatabase, tenant: str) -> None:
        await self._seed(db, tenant, n=1)
        with pytest.raises(RuntimeError):
            async with db.transaction() as r:
                await r.messages.insert_many([message(tenant, "s1", "lost", T0)])
                raise RuntimeError("boom")
        async with db.transaction() as r:
            assert [m.content for m in await r.messages.recent(tenant, "s1", 10)] == ["m0"]
