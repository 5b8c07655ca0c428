"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.storage.sql.database import SqlDatabase, create_engine
from tests.conftest import migrated


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """A migrated SQLite database of the test's own (the outbox tests' job store)."""
    database = SqlDatabase(create_engine(await migrated(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")))
    yield database
    await database.close()
