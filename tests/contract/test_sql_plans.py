"""Reads that must stay index lookups at any size: checked on SQLite's query plans, whose planner
(without statistics) walked a tenant's whole index for ``tenant_id = ? AND id IN (...)`` and for a
row-value IN of (session_id, position): 0.7-1.5 s a context call at 1,000,000 memories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from service.storage.sql.database import SqlDatabase, create_engine
from service.storage.sql.models import Base
from tests.contract.test_memory_store import insert, memory


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}"))
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    episodes = (memory("t1", f"m{i:05d}", user=f"u{i % 30}", session_id=f"s{i // 100}", position=i % 100) for i in range(3000))
    await insert(db, *episodes)
    yield db
    await db.close()


async def plans_of_reads(db: SqlDatabase, read: Any) -> list[str]:
    """The query plan of every SELECT that ``read(repos)`` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.transaction() as repos:
            await read(repos)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        for statement, parameters in sent:
            cursor = await raw.driver_connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append(" | ".join(str(row[-1]) for row in await cursor.fetchall()))
    return plans


async def test_memories_by_id_use_the_primary_key(sqlite_db: SqlDatabase) -> None:
    plans = await plans_of_reads(sqlite_db, lambda r: r.memories.get_many("t1", [f"m{i:05d}" for i in range(0, 3000, 50)]))
    assert plans and all("sqlite_autoindex_memories_1" in p for p in plans), plans


async def test_turns_at_positions_use_the_session_index(sqlite_db: SqlDatabase) -> None:
    wanted = [("s3", 4), ("s3", 6), ("s17", 0), ("s29", 99)]
    found: list[Any] = []

    async def read(repos: Any) -> None:
        found.extend(await repos.episodes.at_positions("t1", wanted))

    plans = await plans_of_reads(sqlite_db, read)
    assert sorted((m.session_id, m.position) for m in found) == sorted(wanted)
    assert plans and all("ix_memories_session" in p for p in plans), plans


async def test_keyword_index_lookups_use_the_primary_key(sqlite_db: SqlDatabase) -> None:
    async with sqlite_db.transaction() as repos:
        for i in range(0, 3000, 7):
            await repos.terms.add("t1", f"u{i % 30}", f"m{i:05d}", ["trip", f"term{i % 13}"])
    plans = await plans_of_reads(sqlite_db, lambda r: r.terms.lookup("t1", "u3", ["trip", "term3"], 10))
    assert plans and all("sqlite_autoindex_memory_terms_1" in p for p in plans), plans
