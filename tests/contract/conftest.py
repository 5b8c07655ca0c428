"""Fixtures shared by the SQL store contracts: one database per backend and a fresh tenant.

On Postgres the tables are shared by every test of the run, so a test keeps to its own tenant
and filters by it whatever it reads across tenants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.storage.sql.database import SqlDatabase, create_engine
from tests.conftest import migrated


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """A migrated database: a new SQLite file, or the run's scratch Postgres database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    database = SqlDatabase(create_engine(await migrated(url)))
    yield database
    await database.close()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
