"""The planner's statistics (``Database.analyze``): reads by id go through the primary key."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from service.storage.sql.database import SqlDatabase, create_engine
from service.storage.sql.models import Base
from tests.contract.test_memory_store import insert, memory

MEMORIES = 3000


def id_lookup_plan(sql_ids: list[str]) -> str:
    marks = ", ".join(f"'{i}'" for i in sql_ids)
    return f"EXPLAIN QUERY PLAN SELECT * FROM memories WHERE tenant_id = 't1' AND id IN ({marks})"


async def plan_of(db: SqlDatabase, ids: list[str]) -> str:
    async with db.engine.connect() as conn:
        return " ".join(str(row[-1]) for row in (await conn.execute(text(id_lookup_plan(ids)))).all())


async def test_analyze_runs_on_every_backend(db: SqlDatabase) -> None:
    await insert(db, *(memory("t1", f"m{i}") for i in range(10)))
    await db.analyze()
    await db.analyze()  # again: idempotent
    async with db.transaction() as repos:
        assert len(await repos.memories.get_many("t1", ["m1", "m2"])) == 2


async def test_sqlite_reads_memories_by_primary_key_once_analyzed(tmp_path: Path) -> None:
    """SQLite only: Postgres keeps its own statistics (autovacuum)."""
    db = SqlDatabase(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"))
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await insert(db, *(memory("t1", f"m{i:05d}", user=f"u{i % 30}") for i in range(MEMORIES)))
    ids = [f"m{i:05d}" for i in range(0, MEMORIES, 50)]
    assert "sqlite_autoindex_memories_1" not in await plan_of(db, ids)  # the tenant's index, without statistics
    await db.analyze()
    assert "sqlite_autoindex_memories_1" in await plan_of(db, ids)
    await db.close()
