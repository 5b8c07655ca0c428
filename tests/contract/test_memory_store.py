"""The memory stores' contract (request path, history, upkeep), run on SQLite and on Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.domain import records
from service.storage.errors import InvalidCursor
from service.storage.records import MemoryQuery, MemoryRecord, MemoryVersion
from service.storage.sql.database import SqlDatabase
from tests.contract.test_sql_store import T0

#: Expiry times no other test uses: upkeep reads every tenant's memories of the shared tables.
ANCIENT = datetime(1901, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def memory(
    tenant: str,
    mid: str,
    *,
    user: str = "u1",
    content: str | None = None,
    minutes: int = 0,
    **fields: object,
) -> MemoryRecord:
    """A memory created ``minutes`` after T0 (its event time too); ``fields`` override the rest."""
    text = content if content is not None else f"memory {mid}"
    at = T0 + timedelta(minutes=minutes)
    base = MemoryRecord(
        tenant_id=tenant, id=mid, user_id=user, session_id=None, agent_id=None, type="semantic", content=text,
        modality="text", media_url=None, importance=0.5, topic=None, keywords=[], metadata={}, speaker=None,
        event_time=at, created_at=at, updated_at=at, expires_at=None, source_ids=[], position=None, version=1,
        content_hash=records.content_hash(text),
    )  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def ids_of(items: list[MemoryRecord]) -> list[str]:
    return [m.id for m in items]


async def insert(db: SqlDatabase, *memories: MemoryRecord) -> None:
    async with db.transaction() as r:
        await r.memories.insert_many(memories)


async def listed(db: SqlDatabase, query: MemoryQuery) -> list[str]:
    async with db.transaction() as r:
        return ids_of((await r.memories.list(query)).items)


class TestWriteAndRead:
    async def test_every_field_round_trips(self, db: SqlDatabase, tenant: str) -> None:
        full = memory(
            tenant, f"{tenant}-full", session_id="s1", agent_id="bot", type="episodic", modality="image",
            media_url="https://example.com/a.png", importance=0.875, topic="travel", keywords=["lisbon", "tram"],
            metadata={"source": "chat", "n": 3, "nested": {"ok": True}, "list": [1, "two"]}, speaker="Ann",
            event_time=T0 - timedelta(days=3, microseconds=7), updated_at=T0 + timedelta(seconds=1),
            expires_at=T0 + timedelta(days=30), source_ids=["m-a", "m-b"], position=12, version=4,
        )  # fmt: skip
        bare = memory(tenant, f"{tenant}-bare")
        await insert(db, full, bare)
        async with db.transaction() as r:
            got = await r.memories.get_many(tenant, [full.id, bare.id])
        assert sorted(got, key=lambda m: m.id) == [bare, full]
        assert all(m.created_at.tzinfo is not None and m.event_time.utcoffset() == timedelta(0) for m in got)

    async def test_get_many_keeps_to_the_tenant_and_skips_unknown_ids(self, db: SqlDatabase, tenant: str) -> None:
        mine, theirs = memory(tenant, f"{tenant}-a"), memory(tenant + "x", f"{tenant}-b")
        await insert(db, mine, theirs)
        async with db.transaction() as r:
            assert await r.memories.get_many(tenant, [mine.id, theirs.id, f"{tenant}-none"]) == [mine]
            assert await r.memories.get_many(tenant + "x", [mine.id]) == []
            assert await r.memories.get_many(tenant, []) == []

    async def test_find_by_hash_matches_tenant_user_type_and_hash(self, db: SqlDatabase, tenant: str) -> None:
        same = "Ann likes green tea"
        target = memory(tenant, f"{tenant}-1", content=same)
        await insert(
            db,
            target,
            memory(tenant, f"{tenant}-2", content=same, user="u2"),
            memory(tenant, f"{tenant}-3", content=same, type="episodic"),
            memory(tenant + "x", f"{tenant}-4", content=same),
            memory(tenant, f"{tenant}-5", content="Ann likes coffee"),
        )
        async with db.transaction() as r:
            found = await r.memories.find_by_hash(tenant, "u1", "semantic", [records.content_hash(same), "0" * 64])
            nothing = await r.memories.find_by_hash(tenant, "u1", "semantic", ["0" * 64])
        assert found == [target]
        assert nothing == []

    async def test_replace_overwrites_every_field(self, db: SqlDatabase, tenant: str) -> None:
        before = memory(tenant, f"{tenant}-1", keywords=["a"], metadata={"k": 1})
        await insert(db, before)
        after = replace(
            before, content="changed", content_hash=records.content_hash("changed"), type="procedural", keywords=["b"],
            metadata={"k": 2}, topic="t", expires_at=T0 + timedelta(days=1), version=2, updated_at=T0 + timedelta(hours=1),
        )  # fmt: skip
        async with db.transaction() as r:
            await r.memories.replace(after)
        async with db.transaction() as r:
            assert await r.memories.get_many(tenant, [before.id]) == [after]

    async def test_replace_refuses_a_missing_or_foreign_memory(self, db: SqlDatabase, tenant: str) -> None:
        mine = memory(tenant, f"{tenant}-1")
        await insert(db, mine)
        with pytest.raises(LookupError):
            async with db.transaction() as r:
                await r.memories.replace(memory(tenant, f"{tenant}-none"))
        with pytest.raises(LookupError):
            async with db.transaction() as r:
                await r.memories.replace(replace(mine, tenant_id=tenant + "x", content="stolen"))
        async with db.transaction() as r:
            assert await r.memories.get_many(tenant, [mine.id]) == [mine]
            assert await r.memories.get_many(tenant + "x", [mine.id]) == []

    async def test_delete_many_removes_only_the_tenants_listed_memories(self, db: SqlDatabase, tenant: str) -> None:
        a, b, c = (memory(tenant, f"{tenant}-{n}") for n in "abc")
        foreign = memory(tenant + "x", f"{tenant}-d")
        await insert(db, a, b, c, foreign)
        async with db.transaction() as r:
            await r.memories.delete_many(tenant, [a.id, c.id, foreign.id])
            await r.memories.delete_many(tenant, [])
        async with db.transaction() as r:
            assert await r.memories.get_many(tenant, [a.id, b.id, c.id]) == [b]
            assert await r.memories.get_many(tenant + "x", [foreign.id]) == [foreign]

    async def test_speakers_are_distinct_and_the_users_own(self, db: SqlDatabase, tenant: str) -> None:
        await insert(
            db,
            memory(tenant, f"{tenant}-1", speaker="Ann"),
            memory(tenant, f"{tenant}-2", speaker="Ann"),
            memory(tenant, f"{tenant}-3", speaker="Bob"),
            memory(tenant, f"{tenant}-4", speaker=None),
            memory(tenant, f"{tenant}-5", speaker="Cy", user="u2"),
            memory(tenant + "x", f"{tenant}-6", speaker="Dee"),
        )
        async with db.transaction() as r:
            assert sorted(await r.memories.speakers(tenant, "u1")) == ["Ann", "Bob"]
            assert await r.memories.speakers(tenant, "u2") == ["Cy"]
            assert await r.memories.speakers(tenant, "nobody") == []
            assert await r.memories.speakers(tenant + "x", "u1") == ["Dee"]


class TestList:
    async def test_newest_first_in_cursor_pages_ties_broken_by_id(self, db: SqlDatabase, tenant: str) -> None:
        # m0..m5: two share each created_at, so the id decides between them (descending)
        made = [memory(tenant, f"{tenant}-m{i}", minutes=i // 2) for i in range(6)]
        await insert(db, *made, memory(tenant + "x", f"{tenant}-other", minutes=99))
        pages: list[list[str]] = []
        cursor = None
        while True:
            async with db.transaction() as r:
                page = await r.memories.list(MemoryQuery(tenant, limit=2, alive_at=T0, cursor=cursor))
            pages.append(ids_of(page.items))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        expected = [m.id for m in sorted(made, key=lambda m: (m.created_at, m.id), reverse=True)]
        assert pages == [expected[0:2], expected[2:4], expected[4:6]]

    async def test_an_exact_last_page_has_no_cursor(self, db: SqlDatabase, tenant: str) -> None:
        await insert(db, *(memory(tenant, f"{tenant}-m{i}", minutes=i) for i in range(2)))
        async with db.transaction() as r:
            page = await r.memories.list(MemoryQuery(tenant, limit=2, alive_at=T0))
        assert (len(page.items), page.next_cursor) == (2, None)

    async def test_a_cursor_of_another_tenant_is_refused(self, db: SqlDatabase, tenant: str) -> None:
        await insert(db, *(memory(tenant, f"{tenant}-m{i}", minutes=i) for i in range(3)))
        async with db.transaction() as r:
            page = await r.memories.list(MemoryQuery(tenant, limit=1, alive_at=T0))
        assert page.next_cursor is not None
        with pytest.raises(InvalidCursor):
            async with db.transaction() as r:
                await r.memories.list(MemoryQuery(tenant + "x", limit=1, alive_at=T0, cursor=page.next_cursor))

    async def test_filters_by_user_session_types_and_topic(self, db: SqlDatabase, tenant: str) -> None:
        await insert(
            db,
            memory(tenant, f"{tenant}-1", session_id="s1", topic="food"),
            memory(tenant, f"{tenant}-2", session_id="s2", type="episodic", topic="food", minutes=1),
            memory(tenant, f"{tenant}-3", session_id="s1", type="procedural", minutes=2),
            memory(tenant, f"{tenant}-4", user="u2", session_id="s1", topic="food", minutes=3),
        )

        def q(**filters: object) -> MemoryQuery:
            return MemoryQuery(tenant, limit=10, alive_at=T0, **filters)  # type: ignore[arg-type]

        assert await listed(db, q()) == [f"{tenant}-{n}" for n in (4, 3, 2, 1)]
        assert await listed(db, q(user_id="u1")) == [f"{tenant}-{n}" for n in (3, 2, 1)]
        assert await listed(db, q(session_id="s1")) == [f"{tenant}-{n}" for n in (4, 3, 1)]
        assert await listed(db, q(types=("episodic", "procedural"))) == [f"{tenant}-{n}" for n in (3, 2)]
        assert await listed(db, q(topic="food", user_id="u1")) == [f"{tenant}-{n}" for n in (2, 1)]
        assert await listed(db, q(user_id="u1", session_id="s1", types=("semantic",))) == [f"{tenant}-1"]
        assert await listed(db, q(topic="none")) == []
        assert await listed(db, MemoryQuery(tenant + "x", limit=10, alive_at=T0)) == []

    async def test_event_time_window_includes_after_and_excludes_before(self, db: SqlDatabase, tenant: str) -> None:
        # created in the opposite order of their event times (newest created first): the window reads event_time
        await insert(
            db, *(memory(tenant, f"{tenant}-e{h}", minutes=10 - h, event_time=T0 + timedelta(hours=h)) for h in range(4))
        )
        window = MemoryQuery(tenant, limit=10, alive_at=T0, after=T0 + timedelta(hours=1), before=T0 + timedelta(hours=3))
        assert await listed(db, window) == [f"{tenant}-e1", f"{tenant}-e2"]
        assert await listed(db, replace(window, before=None)) == [f"{tenant}-e1", f"{tenant}-e2", f"{tenant}-e3"]
        assert await listed(db, replace(window, after=None)) == [f"{tenant}-e0", f"{tenant}-e1", f"{tenant}-e2"]

    async def test_alive_at_hides_memories_expired_by_then(self, db: SqlDatabase, tenant: str) -> None:
        await insert(
            db,
            memory(tenant, f"{tenant}-forever"),
            memory(tenant, f"{tenant}-later", expires_at=T0 + timedelta(hours=2), minutes=1),
            memory(tenant, f"{tenant}-soon", expires_at=T0 + timedelta(hours=1), minutes=2),
        )
        at = T0 + timedelta(hours=1)  # the moment "soon" expires: no longer alive
        assert await listed(db, MemoryQuery(tenant, limit=10, alive_at=T0)) == [
            f"{tenant}-soon", f"{tenant}-later", f"{tenant}-forever",
        ]  # fmt: skip
        assert await listed(db, MemoryQuery(tenant, limit=10, alive_at=at - timedelta(microseconds=1))) == [
            f"{tenant}-soon", f"{tenant}-later", f"{tenant}-forever",
        ]  # fmt: skip
        assert await listed(db, MemoryQuery(tenant, limit=10, alive_at=at)) == [f"{tenant}-later", f"{tenant}-forever"]
        assert await listed(db, MemoryQuery(tenant, limit=10, alive_at=T0 + timedelta(days=1))) == [f"{tenant}-forever"]

    async def test_pages_of_a_filtered_listing_skip_what_the_filter_leaves_out(self, db: SqlDatabase, tenant: str) -> None:
        made = [memory(tenant, f"{tenant}-m{i}", minutes=i, user="u1" if i % 2 else "u2") for i in range(7)]
        await insert(db, *made)
        seen: list[str] = []
        cursor = None
        while True:
            async with db.transaction() as r:
                page = await r.memories.list(MemoryQuery(tenant, limit=2, alive_at=T0, user_id="u1", cursor=cursor))
            seen += ids_of(page.items)
            if (cursor := page.next_cursor) is None:
                break
        assert seen == [f"{tenant}-m{i}" for i in (5, 3, 1)]


class TestVersions:
    async def test_history_is_oldest_version_first_and_kept_after_deletion(self, db: SqlDatabase, tenant: str) -> None:
        m1 = memory(tenant, f"{tenant}-1")
        m2 = replace(m1, content="second", version=2, updated_at=T0 + timedelta(hours=1))
        created = records.version(m1, "created", {}, T0)
        updated = records.version(m2, "updated", records.diff(m1, m2), T0 + timedelta(hours=1))
        deleted = records.version(replace(m2, version=3), "deleted", {}, T0 + timedelta(hours=2))  # a tombstone
        await insert(db, m1)
        async with db.transaction() as r:
            await r.versions.add(tenant, [updated])  # added out of order
            await r.versions.add(tenant, [created])
            await r.versions.add(tenant, [])
        async with db.transaction() as r:
            await r.memories.delete_many(tenant, [m1.id])
            await r.versions.add(tenant, [deleted])
        async with db.transaction() as r:
            history = await r.versions.history(tenant, m1.id)
        assert history == [created, updated, deleted]
        assert history[1].changes == {"content": [m1.content, "second"]}
        assert history[0].snapshot["content"] == m1.content and history[0].at.tzinfo is not None

    async def test_history_keeps_to_its_memory_and_tenant(self, db: SqlDatabase, tenant: str) -> None:
        a, b = memory(tenant, f"{tenant}-a"), memory(tenant, f"{tenant}-b")
        async with db.transaction() as r:
            await r.versions.add(tenant, [records.version(a, "created", {}, T0), records.version(b, "created", {}, T0)])
        async with db.transaction() as r:
            assert [v.memory_id for v in await r.versions.history(tenant, a.id)] == [a.id]
            assert await r.versions.history(tenant + "x", a.id) == []
            assert await r.versions.history(tenant, f"{tenant}-none") == []

    async def test_a_version_round_trips_its_json(self, db: SqlDatabase, tenant: str) -> None:
        version = MemoryVersion(
            f"{tenant}-1", 3, "merged", {"keywords": [["a"], ["a", "b"]], "importance": [0.5, 0.75]},
            {"user_id": "u1", "content": "x", "metadata": {"nested": {"deep": [1, None, "s"]}}}, T0,
        )  # fmt: skip
        async with db.transaction() as r:
            await r.versions.add(tenant, [version])
        async with db.transaction() as r:
            assert await r.versions.history(tenant, version.memory_id) == [version]


class TestUpkeep:
    async def test_expired_across_tenants_soonest_first_up_to_the_limit(self, db: SqlDatabase, tenant: str) -> None:
        def expiring(name: str, tenant_id: str, seconds: int) -> MemoryRecord:
            return memory(tenant_id, f"{tenant}-{name}", expires_at=ANCIENT + timedelta(seconds=seconds))

        await insert(
            db,
            expiring("third", tenant, 30),
            expiring("first", tenant + "x", 10),
            expiring("at-now", tenant, 40),
            expiring("second", tenant, 20),
            expiring("after-now", tenant + "x", 41),
            memory(tenant, f"{tenant}-forever"),
        )
        now = ANCIENT + timedelta(seconds=40)
        async with db.transaction() as r:
            two = await r.upkeep.expired(now, 2)
            every = await r.upkeep.expired(now, 10_000)
        assert ids_of(two) == [f"{tenant}-first", f"{tenant}-second"]
        mine = [m for m in every if m.id.startswith(tenant)]
        assert ids_of(mine) == [f"{tenant}-{n}" for n in ("first", "second", "third", "at-now")]
        assert mine[0] == expiring("first", tenant + "x", 10)

    async def test_scan_walks_every_tenant_in_id_order(self, db: SqlDatabase, tenant: str) -> None:
        # ids start with the tenant id, so nobody else's memory sorts between them
        made = [memory(tenant if i % 2 else tenant + "x", f"{tenant}-m{i}") for i in range(5)]
        await insert(db, *reversed(made))
        async with db.transaction() as r:
            first = await r.upkeep.scan(tenant, 2)
            rest = await r.upkeep.scan(first[-1].id, 2)
            last = await r.upkeep.scan(rest[-1].id, 10_000)
        assert first == made[0:2]
        assert rest == made[2:4]
        assert last[0] == made[4]
        assert not any(m.id.startswith(tenant) for m in last[1:])

    async def test_count_by_type_counts_every_tenant(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            before = await r.upkeep.count_by_type()
        await insert(
            db,
            memory(tenant, f"{tenant}-1"),
            memory(tenant + "x", f"{tenant}-2"),
            memory(tenant, f"{tenant}-3", type="episodic", expires_at=T0),  # expired memories count until purged
        )
        async with db.transaction() as r:
            after = await r.upkeep.count_by_type()
        grown = {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)}
        assert grown == {"semantic": 2, "episodic": 1}
        assert all(isinstance(n, int) for n in after.values())
