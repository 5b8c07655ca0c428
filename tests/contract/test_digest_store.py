"""The digest, keyword-index and episode stores, run on SQLite and on Postgres."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from service.domain import records
from service.storage.records import Mark, MemoryRecord, Progress, SessionDigest
from service.storage.sql.database import SqlDatabase
from tests.contract.test_sql_store import T0, message, session


def episode(tenant: str, sid: str, position: int | None, type_: str = "episodic", user: str = "u1") -> MemoryRecord:
    return MemoryRecord(
        tenant, str(uuid.uuid4()), user, sid, None, type_, f"turn {position}", "text", None, 0.3, None, [], {}, "ann",
        T0, T0, T0, None, [], position, 1, records.content_hash(f"turn {position} {uuid.uuid4()}"),
    )  # fmt: skip


class TestDigests:
    async def test_missing_then_saved_then_overwritten(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            assert await r.digests.get(tenant, "s1") is None
        first = SessionDigest(tenant, "s1", "Ann: hi.", 3, summarized=Progress(2, Mark(T0, 7)), updated_at=T0, summary_at=T0)
        async with db.transaction() as r:
            await r.digests.save(first)
        async with db.transaction() as r:
            assert await r.digests.get(tenant, "s1") == first
            second = replace(first, condensed=Progress(20, Mark(T0 + timedelta(hours=1), 99)), updated_at=T0 + timedelta(hours=1))
            await r.digests.save(second)
        async with db.transaction() as r:
            assert await r.digests.get(tenant, "s1") == second
            assert await r.digests.get("other-tenant", "s1") is None

    async def test_a_deleted_session_takes_its_digest_along(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            await r.digests.save(SessionDigest(tenant, "s1", "x", 1, updated_at=T0))
        async with db.transaction() as r:
            assert await r.sessions.delete(tenant, "s1")
        async with db.transaction() as r:
            assert await r.digests.get(tenant, "s1") is None


class TestMessagesAfter:
    async def test_messages_after_a_mark_in_time_order(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.sessions.insert(session(tenant, "s1"))
            stored = await r.messages.insert_many([message(tenant, "s1", f"m{i}", T0 + timedelta(seconds=i)) for i in range(5)])
        async with db.transaction() as r:
            assert [m.content for m in await r.messages.after(tenant, "s1", None, 3)] == ["m0", "m1", "m2"]
            mark = Mark(stored[1].created_at, stored[1].seq)
            assert [m.content for m in await r.messages.after(tenant, "s1", mark, 10)] == ["m2", "m3", "m4"]


class TestTermsAndEpisodes:
    async def test_lookup_counts_matched_terms_per_user_and_deletes(self, db: SqlDatabase, tenant: str) -> None:
        async with db.transaction() as r:
            await r.terms.add(tenant, "u1", "a", ["trip", "zurich", "budget"])
            await r.terms.add(tenant, "u1", "b", ["trip"])
            await r.terms.add(tenant, "u2", "c", ["trip", "zurich"])
        async with db.transaction() as r:
            assert await r.terms.lookup(tenant, "u1", ["trip", "zurich"], 10) == {"a": 2, "b": 1}
            assert await r.terms.lookup(tenant, "u1", ["trip"], 1) == {"a": 1}
            assert await r.terms.lookup(tenant, "u1", [], 10) == {}
            await r.terms.delete(tenant, ["a"])
        async with db.transaction() as r:
            assert await r.terms.lookup(tenant, "u1", ["trip", "zurich"], 10) == {"b": 1}
            assert await r.terms.lookup("other-tenant", "u2", ["trip"], 10) == {}

    async def test_positions_last_position_and_what_a_session_made(self, db: SqlDatabase, tenant: str) -> None:
        turns = [episode(tenant, "s1", i) for i in range(3)]
        summary = episode(tenant, "s1", None, type_="summary")
        fact = episode(tenant, "s1", None, type_="semantic")
        async with db.transaction() as r:
            await r.memories.insert_many([*turns, summary, fact, episode(tenant, "s2", 0)])
        async with db.transaction() as r:
            assert await r.episodes.last_position(tenant, "s1") == 2
            assert await r.episodes.last_position(tenant, "nope") is None
            found = await r.episodes.at_positions(tenant, [("s1", 0), ("s1", 2), ("s1", 9)])
            assert sorted(m.position for m in found) == [0, 2]  # type: ignore[type-var]
            made = {m.id for m in await r.episodes.derived_from(tenant, "s1")}
            assert made == {*(t.id for t in turns), summary.id}, "episodes and summaries, not extracted facts"
