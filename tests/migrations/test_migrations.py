"""Alembic upgrade head, downgrade base and upgrade again, on SQLite and on a scratch Postgres database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage.sql import migrate
from service.storage.sql.models import Base


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
    base = make_url(request.getfixturevalue("pg_url"))
    name = f"memsvc_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def test_upgrade_downgrade_upgrade(empty_db: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db)
    assert await _tables(empty_db) == set(Base.metadata.tables)
    await asyncio.to_thread(migrate.downgrade, empty_db, "base")
    assert await _tables(empty_db) == set()
    await asyncio.to_thread(migrate.upgrade, empty_db)
    assert await _tables(empty_db) == set(Base.metadata.tables)
