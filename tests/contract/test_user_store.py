"""The user and profile stores, run on SQLite and on Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from service.storage.records import ProfileRecord
from service.storage.sql.database import SqlDatabase
from service.storage.sql.models import DocumentRow
from tests.contract.test_digest_store import episode
from tests.contract.test_sql_store import T0, message, session


def profile(tenant: str, user: str, fields: dict[str, object] | None = None) -> ProfileRecord:
    return ProfileRecord(tenant, user, fields or {}, [], [], T0, T0)


def document(tenant: str, doc_id: str, user: str | None, at=T0) -> DocumentRow:  # noqa: ANN001
    return DocumentRow(
        tenant_id=tenant, id=doc_id, user_id=user, namespace=None, title="t", content="c", metadata_={},
        chunk_tokens=100, overlap_tokens=0, chunk_count=0, created_at=at, updated_at=at,
    )  # fmt: skip


class TestUsers:
    async def test_counts_and_first_and_last_seen_across_tables(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1", user="ann", at=T0 + timedelta(hours=1)))
            await r.sessions.insert(session(tenant, "s2", user="ann", at=T0 + timedelta(hours=2)))
            await r.sessions.insert(session(tenant, "s3", user="bob"))
            await r.messages.insert_many([message(tenant, "s1", f"m{i}", T0 + timedelta(days=i)) for i in range(3)])
            await r.messages.insert_many([message(tenant, "s3", "hi", T0)])
            expired = replace(episode(tenant, "s1", None, user="ann"), expires_at=T0)
            await r.memories.insert_many([episode(tenant, "s1", 0, user="ann"), episode(tenant, "s1", 1, user="ann"), expired])
            r.users.db.add(document(tenant, "d1", "ann", at=T0 - timedelta(days=1)))  # rows, not the document store
            r.users.db.add(document(tenant, "d2", None))
        async with db.transaction() as r:
            ann = await r.users.get(tenant, "ann", alive_at=T0 + timedelta(seconds=1))
            bob = await r.users.get(tenant, "bob")
            assert await r.users.get(tenant, "nobody") is None
            assert await r.users.get("other-tenant", "ann") is None
        assert ann is not None and bob is not None
        assert (ann.session_count, ann.message_count, ann.memory_count, ann.document_count) == (2, 3, 2, 1)
        assert ann.first_seen == T0 - timedelta(days=1)
        assert ann.last_seen == T0 + timedelta(days=2)
        assert (bob.session_count, bob.message_count, bob.memory_count, bob.document_count) == (1, 1, 0, 0)
        assert bob.first_seen == bob.last_seen == T0

    async def test_a_profile_alone_makes_a_user(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.profiles.save(replace(profile(tenant, "cat"), updated_at=T0 + timedelta(hours=3)))
        async with db.transaction() as r:
            cat = await r.users.get(tenant, "cat")
        assert cat is not None and (cat.session_count, cat.memory_count) == (0, 0)
        assert (cat.first_seen, cat.last_seen) == (T0, T0 + timedelta(hours=3))

    async def test_list_pages_in_id_order_over_every_table(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1", user="u3"))
            await r.sessions.insert(session(tenant, "s2", user="u1"))
            await r.sessions.insert(session(tenant, "s3", user="u1"))
            await r.memories.insert_many([episode(tenant, "s1", 0, user="u2"), episode(tenant, "s1", 1, user="u1")])
            await r.profiles.save(profile(tenant, "u5"))
            r.users.db.add(document(tenant, "d1", "u4"))
            await r.sessions.insert(session(tenant + "x", "s1", user="u0"))
        seen: list[str] = []
        after = None
        while True:
            async with db.transaction() as r:
                page = await r.users.list(tenant, after, 2)
            seen += [u.id for u in page]
            if len(page) < 2:
                break
            after = page[-1].id
        assert seen == ["u1", "u2", "u3", "u4", "u5"]
        async with db.transaction() as r:
            first = (await r.users.list(tenant, None, 1))[0]
        assert (first.id, first.session_count, first.memory_count) == ("u1", 2, 1)


class TestProfiles:
    async def test_save_get_overwrite_delete(self, db: SqlDatabase, tenant: str) -> None:
        first = profile(tenant, "ann", {"name": "Ann", "prefs": {"tea": True}})
        async with db.transaction() as r:
            assert await r.profiles.get(tenant, "ann") is None
            await r.profiles.save(first)
        async with db.transaction() as r:
            assert await r.profiles.get(tenant, "ann", for_update=True) == first
            second = replace(first, fields={"name": "Annie"}, facts=[{"id": "m1"}], updated_at=T0 + timedelta(hours=1))
            await r.profiles.save(second)
        async with db.transaction() as r:
            assert await r.profiles.get(tenant, "ann") == second
            assert await r.profiles.get("other-tenant", "ann") is None
            assert await r.profiles.delete(tenant, "ann")
            assert not await r.profiles.delete(tenant, "ann")
        async with db.transaction() as r:
            assert await r.profiles.get(tenant, "ann") is None

    async def test_derived_parts_leave_the_fields_alone(self, db: SqlDatabase, tenant: str) -> None:
        later = T0 + timedelta(hours=2)
        async with db.transaction() as r:
            await r.profiles.save_derived(tenant, "new", [{"id": "m1"}], [{"term": "tea", "weight": 1.0}], T0)
            await r.profiles.save(profile(tenant, "ann", {"name": "Ann"}))
        async with db.transaction() as r:
            await r.profiles.save_derived(tenant, "ann", [{"id": "m2"}], [], later)
        async with db.transaction() as r:
            new = await r.profiles.get(tenant, "new")
            ann = await r.profiles.get(tenant, "ann")
        assert new == ProfileRecord(tenant, "new", {}, [{"id": "m1"}], [{"term": "tea", "weight": 1.0}], T0, T0, T0)
        assert ann == ProfileRecord(tenant, "ann", {"name": "Ann"}, [{"id": "m2"}], [], T0, T0, later)

    async def test_top_facts_by_importance_then_recency(self, db: SqlDatabase, tenant: str) -> None:
        def fact(text: str, importance: float, hours: int, type_: str = "semantic", **extra: object):  # noqa: ANN202
            base = episode(tenant, "s1", None, type_=type_, user="ann")
            return replace(base, content=text, importance=importance, updated_at=T0 + timedelta(hours=hours), **extra)

        async with db.transaction() as r:
            await r.memories.insert_many([
                fact("old", 0.9, 1), fact("new", 0.9, 2), fact("low", 0.2, 3), fact("pref", 0.5, 0, "profile"),
                fact("episode", 1.0, 0, "episodic"), fact("gone", 1.0, 0, expires_at=T0),
            ])  # fmt: skip
        async with db.transaction() as r:
            top = await r.profiles.top_facts(tenant, "ann", ("semantic", "profile"), T0 + timedelta(seconds=1), 3)
        assert [m.content for m in top] == ["new", "old", "pref"]
