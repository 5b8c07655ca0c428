"""Alembic upgrade head, downgrade base and upgrade again, on SQLite and on a scratch Postgres database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage.sql import migrate
from service.storage.sql.models import Base
from tests import services


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names())) - {"alembic_version"}
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    base = services.require("database", services.postgres_url(), 5432)
    with services.scratch_database(base) as url:
        yield url


async def test_upgrade_downgrade_upgrade(empty_db: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db)
    assert await _tables(empty_db) == set(Base.metadata.tables)
    await asyncio.to_thread(migrate.downgrade, empty_db, "base")
    assert await _tables(empty_db) == set()
    await asyncio.to_thread(migrate.upgrade, empty_db)
    assert await _tables(empty_db) == set(Base.metadata.tables)
