"""aiosqlite with one trip to its thread per statement.

SQLAlchemy's aiosqlite adapter makes four trips to aiosqlite's worker thread for every statement:
open a cursor, execute, fetch the rows, close the cursor. Each trip is a thread wake-up and an
event-loop wake-up (about 0.2 ms here), so a ``SELECT 1`` cost 0.8 ms and a context call spent
more time handing work between threads than in SQLite. This adapter runs the four steps as one
function on that thread, so a statement is one trip. Everything else (the connection, its
transactions, error translation, server-side cursors) is SQLAlchemy's own.

It also queues this process's writing transactions in the event loop. SQLite lets one
transaction write at a time; a connection that finds the write lock taken sleeps in SQLite's busy
handler (1, 2, 5, 10 ... 100 ms a try, whether or not the lock came free meanwhile), so under a
steady write load (messages posted while the worker indexes and digests) a quarter of the writes
slept 20 ms to 3 s. Here a transaction's first write statement first takes the engine's write gate
(an ``asyncio.Lock``: waiters are woken in order the moment it is free) and the commit or
rollback gives it back; reads never wait for it. Another process writing the same file is still
waited for by SQLite's own handler.

Use it by passing :func:`one_trip_dbapi` as ``module=`` to ``create_async_engine`` with an
``sqlite+aiosqlite`` URL.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["WriteGate", "one_trip_dbapi"]

# Statements that take SQLite's write lock (the sqlite3 module opens a transaction before them).
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})


def _writes(operation: str) -> bool:
    head = operation.lstrip()[:8].split(None, 1)
    return bool(head) and head[0].upper() in _WRITES


class WriteGate:
    """One writing transaction of this engine at a time, queued in the event loop. A lock per
    running loop (an engine may outlive one: tests), waited for up to ``timeout`` seconds (then
    the ``database is locked`` error SQLite itself would give)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        found = self._locks.get(loop)
        if found is None:
            found = self._locks[loop] = asyncio.Lock()
        return found

    async def enter(self) -> asyncio.Lock:
        lock = self.lock()
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: it can lose a cancellation on 3.11
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError(f"database is locked (no write turn within {self.timeout:g} s)") from None
        return lock

_Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _run_statement(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the statement, its rows and counts, and the cursor closed."""
    cursor: sqlite3.Cursor = connection._conn.cursor()  # noqa: SLF001 - the thread's own sqlite3 connection
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement, fetch and close are one call on aiosqlite's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment] - no aiosqlite cursor is opened
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:  # type: ignore[override]
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows were fetched and the cursor closed on the thread."""

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, many=False))
        except Exception as error:  # noqa: BLE001 - translated to the DBAPI's errors, as SQLAlchemy's cursor does
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, many=True))
        except Exception as error:  # noqa: BLE001
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._adapt_connection
        if isinstance(connection, _OneTripConnection) and connection.gate_held is None and _writes(operation):
            connection.gate_held = await connection.dbapi.gate.enter()
        async with self._adapt_connection._execute_mutex:
            outcome = await self._connection._execute(_run_statement, self._connection, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("gate_held",)
    _cursor_cls = _OneTripCursor
    dbapi: _OneTripDbapi

    def __init__(self, dbapi: _OneTripDbapi, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self.gate_held: asyncio.Lock | None = None  # the write gate, while this transaction writes

    # However the transaction ends, the gate is given back.
    def commit(self) -> None:
        self._then_leave_gate(super().commit)

    def rollback(self) -> None:
        self._then_leave_gate(super().rollback)

    def close(self) -> None:
        self._then_leave_gate(super().close)

    def terminate(self) -> None:
        self._then_leave_gate(super().terminate)

    def _then_leave_gate(self, end: Callable[[], None]) -> None:
        try:
            end()
        finally:
            held, self.gate_held = self.gate_held, None
            if held is not None and held.locked():
                held.release()


class _OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self, aiosqlite: Any, sqlite: Any, gate: WriteGate) -> None:
        super().__init__(aiosqlite, sqlite)
        self.gate = gate

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneTripConnection(self, adapted._connection)


def one_trip_dbapi(write_timeout: float = 10.0) -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for ``create_async_engine(..., module=...)`` with an aiosqlite URL (one a
    database file: its connections share the write gate; ``write_timeout`` as ``busy_timeout``)."""
    return _OneTripDbapi(aiosqlite, sqlite3, WriteGate(write_timeout))
