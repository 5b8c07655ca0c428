"""The governance store's contract (a user's records as a whole), on SQLite and on Postgres:
export pages, idempotent restore, and an erasure that leaves every other user alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from service.domain import records
from service.storage.records import (
    Erased,
    MemoryQuery,
    MemoryRecord,
    MemoryVersion,
    MessageQuery,
    Page,
    ProfileRecord,
    SessionDigest,
)
from service.storage.sql.database import SqlDatabase
from tests.contract.test_document_store import chunks_of, document
from tests.contract.test_memory_store import memory
from tests.contract.test_sql_store import T0, message, session

NOTHING = Erased(session_ids=[], messages=0, memory_ids=[], versions=0, documents=0, chunk_ids=[], profile=False)


def history_of(m: MemoryRecord, deleted: bool = False) -> list[MemoryVersion]:
    """A created version, an update, and a tombstone when ``deleted``."""
    updated = replace(m, content=m.content + "!", version=2)
    versions = [
        records.version(m, "created", {}, m.created_at),
        records.version(updated, "updated", records.diff(m, updated), m.created_at + timedelta(minutes=1)),
    ]
    if deleted:
        versions.append(records.version(replace(updated, version=3), "deleted", {}, m.created_at + timedelta(minutes=2)))
    return versions


async def populate(db: SqlDatabase, tenant: str, user: str) -> dict[str, list]:  # type: ignore[type-arg]
    """Two sessions with messages (one with a digest), three memories (one expired) with history and
    terms, a deleted memory's history, two documents with chunks and a profile, all of ``user``."""
    sessions = [session(tenant, f"{user}-s{i}", user=user, at=T0 + timedelta(hours=i)) for i in range(2)]
    messages = [message(tenant, s.id, f"{s.id} says {i}", T0 + timedelta(hours=2, minutes=i)) for s in sessions for i in range(2)]
    memories = [
        memory(tenant, f"{tenant}-{user}-m{i}", user=user, minutes=i, expires_at=T0 if i == 1 else None) for i in range(3)
    ]
    gone = memory(tenant, f"{tenant}-{user}-gone", user=user)
    versions = [v for m in memories for v in history_of(m)] + history_of(gone, deleted=True)
    docs = [document(tenant, user=user, minutes=i, chunks=2) for i in range(2)]
    chunks = {d.id: chunks_of(d) for d in docs}
    async with db.transaction() as r:
        for s in sessions:
            await r.sessions.insert(s)
        await r.messages.insert_many(messages)
        await r.memories.insert_many(memories)
        await r.versions.add(tenant, versions)
        for m in memories:
            await r.terms.add(tenant, user, m.id, ["tea", user])
        for d in docs:
            await r.documents.insert(d, chunks[d.id])
        await r.profiles.save(ProfileRecord(tenant, user, {"city": "Lisbon"}, [], [], T0, T0))
        await r.digests.save(SessionDigest(tenant, sessions[0].id, f"{user} said hi.", 4, updated_at=T0))
    return {"sessions": sessions, "messages": messages, "memories": memories, "versions": versions,
            "documents": docs, "chunks": [c for d in docs for c in chunks[d.id]]}  # fmt: skip


def by_key(versions: list[MemoryVersion]) -> list[MemoryVersion]:
    return sorted(versions, key=lambda v: (v.memory_id, v.version))


class TestExport:
    async def test_sessions_of_the_user_oldest_first(self, db: SqlDatabase, tenant: str) -> None:
        mine = await populate(db, tenant, "ann")
        await populate(db, tenant, "bob")
        await populate(db, tenant + "x", "ann")
        async with db.transaction() as r:
            assert await r.userdata.sessions(tenant, "ann") == mine["sessions"]
            assert await r.userdata.sessions(tenant, "nobody") == []

    async def test_memories_in_id_pages_expired_ones_included(self, db: SqlDatabase, tenant: str) -> None:
        mine = await populate(db, tenant, "ann")
        await populate(db, tenant, "bob")
        await populate(db, tenant + "x", "ann")
        pages: list[list[MemoryRecord]] = []
        after = None
        async with db.transaction() as r:
            while page := await r.userdata.memories(tenant, "ann", after, 2):
                pages.append(page)
                after = page[-1].id
        assert [len(p) for p in pages] == [2, 1]
        assert [m for p in pages for m in p] == sorted(mine["memories"], key=lambda m: m.id)

    async def test_versions_in_pages_a_deleted_memorys_included(self, db: SqlDatabase, tenant: str) -> None:
        mine = await populate(db, tenant, "ann")
        await populate(db, tenant, "bob")
        await populate(db, tenant + "x", "ann")
        seen: list[MemoryVersion] = []
        after = None
        async with db.transaction() as r:
            while page := await r.userdata.versions(tenant, "ann", after, 3):
                assert len(page) <= 3
                seen += page
                after = (page[-1].memory_id, page[-1].version)
        assert seen == by_key(mine["versions"])
        assert [v.op for v in seen if v.memory_id.endswith("-gone")] == ["created", "updated", "deleted"]


class TestRestore:
    async def test_restoring_twice_adds_nothing_the_second_time(self, db: SqlDatabase, tenant: str) -> None:
        exported = await populate(db, tenant, "ann")
        async with db.transaction() as r:
            await r.userdata.erase(tenant, "ann")
        for run in ("first", "second"):
            async with db.transaction() as r:
                got = (
                    await r.userdata.restore_sessions(exported["sessions"]),
                    await r.userdata.restore_messages(exported["messages"]),
                    await r.userdata.restore_memories(exported["memories"]),
                    await r.userdata.restore_versions(tenant, "ann", exported["versions"]),
                )
            if run == "first":
                assert got == (2, 4, [m.id for m in exported["memories"]], 9)
            else:
                assert got == (0, 0, [], 0)
        async with db.transaction() as r:
            assert await r.userdata.sessions(tenant, "ann") == exported["sessions"]
            listed = await r.messages.list(MessageQuery(tenant, "ann-s0", limit=10))
            assert [(m.id, m.content) for m in listed.items] == [
                (m.id, m.content) for m in exported["messages"] if m.session_id == "ann-s0"
            ]
            assert await r.userdata.memories(tenant, "ann", None, 10) == sorted(exported["memories"], key=lambda m: m.id)
            assert await r.userdata.versions(tenant, "ann", None, 100) == by_key(exported["versions"])

    async def test_restore_fills_in_only_what_is_missing(self, db: SqlDatabase, tenant: str) -> None:
        exported = await populate(db, tenant, "ann")
        extra_session = session(tenant, "ann-s9", user="ann", at=T0 + timedelta(days=1))
        extra_message = message(tenant, "ann-s0", "late", T0 + timedelta(days=1))
        extra_memory = memory(tenant, f"{tenant}-ann-m9", user="ann")
        extra_version = records.version(extra_memory, "created", {}, T0)
        async with db.transaction() as r:
            assert await r.userdata.restore_sessions([*exported["sessions"], extra_session]) == 1
            assert await r.userdata.restore_messages([*exported["messages"], extra_message]) == 1
            assert await r.userdata.restore_memories([extra_memory, *exported["memories"]]) == [extra_memory.id]
            assert await r.userdata.restore_versions(tenant, "ann", [*exported["versions"], extra_version]) == 1
            assert await r.userdata.restore_sessions([]) == 0
            assert await r.userdata.restore_messages([]) == 0
            assert await r.userdata.restore_memories([]) == []
            assert await r.userdata.restore_versions(tenant, "ann", []) == 0
        async with db.transaction() as r:
            assert await r.versions.history(tenant, extra_memory.id) == [extra_version]
            newest = await r.messages.recent(tenant, "ann-s0", 1)
            assert [m.content for m in newest] == ["late"]


class TestErase:
    async def test_erase_reports_what_went_and_leaves_other_users_alone(self, db: SqlDatabase, tenant: str) -> None:
        ann = await populate(db, tenant, "ann")
        bob = await populate(db, tenant, "bob")
        ann_elsewhere = await populate(db, tenant + "x", "ann")
        async with db.transaction() as r:
            erased = await r.userdata.erase(tenant, "ann")
        assert erased.session_ids == [s.id for s in ann["sessions"]]
        assert erased.messages == 4
        assert sorted(erased.memory_ids) == sorted(m.id for m in ann["memories"])
        assert erased.versions == 9
        assert erased.documents == 2
        assert sorted(erased.chunk_ids) == sorted(c.id for c in ann["chunks"])
        assert erased.profile is True

        async with db.transaction() as r:
            assert await r.userdata.sessions(tenant, "ann") == []
            assert await r.userdata.memories(tenant, "ann", None, 10) == []
            assert await r.userdata.versions(tenant, "ann", None, 10) == []
            assert await r.messages.list(MessageQuery(tenant, "ann-s0", limit=10)) == Page([], None)
            assert await r.profiles.get(tenant, "ann") is None
            assert await r.digests.get(tenant, "ann-s0") is None  # went with its session
            assert [await r.documents.get(tenant, d.id) for d in ann["documents"]] == [None, None]
            assert await r.documents.chunks_by_id(tenant, [c.id for c in ann["chunks"]]) == []
            assert await r.terms.lookup(tenant, "ann", ["tea"], 10) == {}
            assert await r.memories.list(MemoryQuery(tenant, limit=10, alive_at=T0, user_id="ann")) == Page([], None)

            for owner, data, user in ((tenant, bob, "bob"), (tenant + "x", ann_elsewhere, "ann")):
                assert await r.userdata.sessions(owner, user) == data["sessions"]
                assert len((await r.messages.list(MessageQuery(owner, f"{user}-s1", limit=10))).items) == 2
                assert len(await r.userdata.memories(owner, user, None, 10)) == 3
                assert len(await r.userdata.versions(owner, user, None, 100)) == 9
                assert len(await r.terms.lookup(owner, user, ["tea"], 10)) == 3
                assert await r.profiles.get(owner, user) is not None
                assert await r.digests.get(owner, f"{user}-s0") is not None
                assert len(await r.documents.chunks_by_id(owner, [c.id for c in data["chunks"]])) == 4

    async def test_erasing_nobody_removes_nothing(self, db: SqlDatabase, tenant: str) -> None:
        await populate(db, tenant, "bob")
        async with db.transaction() as r:
            assert await r.userdata.erase(tenant, "ann") == NOTHING
            assert await r.userdata.erase(tenant + "x", "bob") == NOTHING
        async with db.transaction() as r:
            assert len(await r.userdata.memories(tenant, "bob", None, 10)) == 3

    async def test_a_second_erase_finds_nothing_left(self, db: SqlDatabase, tenant: str) -> None:
        await populate(db, tenant, "ann")
        async with db.transaction() as r:
            assert await r.userdata.erase(tenant, "ann") != NOTHING
        async with db.transaction() as r:
            assert await r.userdata.erase(tenant, "ann") == NOTHING
