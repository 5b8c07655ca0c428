"""The embedded SQLite engine: aiosqlite with one thread trip a statement, and UTC datetimes read
back aware (``service/storage/sql/sqlite_driver.py``, ``types.UtcDateTime``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.sql.database import create_engine
from service.storage.sql.types import UtcDateTime

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("at", UtcDateTime, nullable=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_statement_is_one_trip_to_the_connection_thread(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    trips: list[object] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
        trips.append(fn)
        return await original(self, fn, *args, **kwargs)

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection is open and its transaction begun
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        rows = (await conn.execute(text("SELECT 1 UNION ALL SELECT 2"))).all()
    assert [r[0] for r in rows] == [1, 2]
    assert len(trips) == 2, trips  # the SELECT, then the rollback when the connection goes back to the pool


async def test_rows_counts_and_keys_come_back_as_from_a_plain_cursor(engine: AsyncEngine) -> None:
    at = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    async with engine.begin() as conn:
        first = await conn.execute(insert(things).values(name="a", at=at))
        await conn.execute(insert(things), [{"name": "b", "at": None}, {"name": "c", "at": at}])  # executemany
        changed = await conn.execute(update(things).where(things.c.at.is_not(None)).values(name=things.c.name + "!"))
        rows = (await conn.execute(select(things.c.name, things.c.at).order_by(things.c.id))).all()
    assert first.inserted_primary_key == (1,)
    assert changed.rowcount == 2
    assert [tuple(r) for r in rows] == [("a!", at), ("b", None), ("c!", at)]


async def test_an_error_is_the_dbapi_error_and_the_connection_stays_usable(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="a"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(things).values(name="a"))
    async with engine.connect() as conn:
        assert (await conn.execute(select(things.c.name))).scalars().all() == ["a"]


async def test_datetimes_read_back_aware_in_utc_whatever_text_was_stored(engine: AsyncEngine) -> None:
    local = datetime(2024, 2, 29, 23, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="bound", at=local))
        # Text written by hand (an older version, a manual fix): ISO with T, and with an offset.
        await conn.execute(text("INSERT INTO things (name, at) VALUES ('t', '2023-05-08T13:56:00'), ('offset', '2023-05-08 15:56:00+02:00')"))
        rows = dict((await conn.execute(select(things.c.name, things.c.at))).all())
    assert rows["bound"] == local and rows["bound"].tzinfo is UTC
    assert rows["t"] == datetime(2023, 5, 8, 13, 56, tzinfo=UTC) == rows["offset"]
    assert rows["offset"].tzinfo is UTC


class TestWriteGate:
    """Writing transactions of one engine take turns in the event loop, not in SQLite's busy handler."""

    async def test_a_second_writer_waits_for_the_first_to_commit_and_readers_do_not(self, engine: AsyncEngine) -> None:
        order: list[str] = []
        first_wrote = asyncio.Event()
        finish_first = asyncio.Event()

        async def first() -> None:
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="first"))
                first_wrote.set()
                await finish_first.wait()
                order.append("first commits")

        async def second() -> None:
            await first_wrote.wait()
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="second"))  # waits for the gate here
                order.append("second wrote")

        writing = asyncio.create_task(first())
        waiting = asyncio.create_task(second())
        await first_wrote.wait()
        await asyncio.sleep(0.05)
        async with engine.connect() as conn:  # a reader goes ahead of the queued writer, seeing the committed rows
            assert (await conn.execute(select(things.c.name))).all() == []
        assert order == [] and not waiting.done()
        finish_first.set()
        await asyncio.wait_for(asyncio.gather(writing, waiting), 10)
        assert order == ["first commits", "second wrote"]
        async with engine.connect() as conn:
            assert sorted(r[0] for r in (await conn.execute(select(things.c.name))).all()) == ["first", "second"]

    async def test_a_failed_transaction_gives_the_gate_back(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(things).values(name="taken"))
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="other"))
                await conn.execute(insert(things).values(name="taken"))  # unique: the transaction rolls back
        async with asyncio.timeout(5), engine.begin() as conn:  # the gate is free again
            await conn.execute(insert(things).values(name="next"))
        async with engine.connect() as conn:
            assert sorted(r[0] for r in (await conn.execute(select(things.c.name))).all()) == ["next", "taken"]

    async def test_a_waiting_writer_goes_on_the_moment_the_gate_is_free(self, engine: AsyncEngine) -> None:
        """SQLite's busy handler would retry on its own schedule (1, 2, 5, ... 100 ms sleeps: after
        a 440 ms wait its next try comes 88 ms after the lock came free)."""
        first_wrote, committed_at, wrote_at = asyncio.Event(), [0.0], [0.0]

        async def first() -> None:
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="first"))
                first_wrote.set()
                await asyncio.sleep(0.44)
                committed_at[0] = time.perf_counter()  # the commit follows at once

        async def second() -> None:
            await first_wrote.wait()
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="second"))
                wrote_at[0] = time.perf_counter()

        await asyncio.wait_for(asyncio.gather(first(), second()), 10)
        assert 0 <= wrote_at[0] - committed_at[0] < 0.05

    async def test_a_writer_that_never_gets_a_turn_fails_as_sqlite_would(self, tmp_path: Path) -> None:
        from service.storage.sql import sqlite_driver

        impatient = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
        gate = impatient.dialect.dbapi.gate  # type: ignore[union-attr]
        gate.timeout = 0.2
        assert isinstance(gate, sqlite_driver.WriteGate)
        async with impatient.begin() as conn:
            await conn.run_sync(metadata.create_all)
        try:
            async with impatient.begin() as holder:
                await holder.execute(insert(things).values(name="held"))
                with pytest.raises(OperationalError, match="database is locked"):
                    async with impatient.begin() as conn:
                        await conn.execute(insert(things).values(name="late"))
        finally:
            await impatient.dispose()
