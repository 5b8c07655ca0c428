"""The SQL engine and its unit of work: one transaction per ``transaction()`` block."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.storage.sql.digests import SqlDigests, SqlEpisodes, SqlTerms
from service.storage.sql.documents import SqlDocuments
from service.storage.sql.jobs import SqlJobs
from service.storage.sql.keys import SqlAnswers, SqlKeys, SqlTenants
from service.storage.sql.memories import SqlMemories, SqlMemoryUpkeep, SqlMemoryVersions
from service.storage.sql.stores import SqlMessages, SqlSessions
from service.storage.sql.retention import SqlRetention
from service.storage.sql.sqlite_driver import one_trip_dbapi
from service.storage.sql.userdata import SqlUserData
from service.storage.sql.users import SqlProfiles, SqlUsers

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # an acknowledged write survives a killed process and power loss
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cur.execute(pragma)
    cur.close()


def _json_loads(text: str) -> Any:
    """JSON columns read with orjson (a fifth of a context call's SQL time was ``json.loads``);
    the standard parser for what orjson refuses, such as the NaN that SQLite rows may hold."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _json_dumps(value: Any) -> str:
    """JSON columns written with orjson (``json.dumps`` was a sixth of a bulk import's SQL time);
    the standard encoder for what orjson refuses (integers beyond 64 bits, lone surrogates).
    orjson writes NaN and infinities as null where ``json.dumps`` wrote the non-JSON ``NaN``
    (which Postgres refused anyway); inputs never carry them (requests refuse non-finite numbers)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


def create_engine(url: str, pool_size: int = 10, connect_timeout: float = 5.0) -> AsyncEngine:
    """An async engine for Postgres (asyncpg) or SQLite (aiosqlite, one thread trip a statement:
    ``sqlite_driver``) with the right settings.

    ``connect_timeout`` bounds a connection attempt to an unreachable host (asyncpg waits 60 s).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"module": one_trip_dbapi()} if parsed.get_driver_name() == "aiosqlite" else {}
        engine = create_async_engine(url, json_serializer=_json_dumps, json_deserializer=_json_loads, **options)
        event.listen(engine.sync_engine, "connect", _apply_sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=_json_loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=connect_timeout * 2,
        connect_args={"timeout": connect_timeout},
    )


@dataclass(slots=True)
class SqlRepos:
    sessions: SqlSessions
    messages: SqlMessages
    memories: SqlMemories
    versions: SqlMemoryVersions
    upkeep: SqlMemoryUpkeep
    jobs: SqlJobs
    episodes: SqlEpisodes
    digests: SqlDigests
    terms: SqlTerms
    tenants: SqlTenants
    keys: SqlKeys
    answers: SqlAnswers
    userdata: SqlUserData
    retention: SqlRetention
    users: SqlUsers
    profiles: SqlProfiles
    documents: SqlDocuments


class SqlDatabase:
    """Implements the ``Database`` port over one async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlRepos]:
        async with self._sessions() as db, db.begin():
            yield self._repos(db)

    @staticmethod
    def _repos(db: AsyncSession) -> SqlRepos:
        return SqlRepos(
            sessions=SqlSessions(db),
            messages=SqlMessages(db),
            memories=SqlMemories(db),
            versions=SqlMemoryVersions(db),
            upkeep=SqlMemoryUpkeep(db),
            jobs=SqlJobs(db),
            episodes=SqlEpisodes(db),
            digests=SqlDigests(db),
            terms=SqlTerms(db),
            tenants=SqlTenants(db),
            keys=SqlKeys(db),
            answers=SqlAnswers(db),
            userdata=SqlUserData(db),
            retention=SqlRetention(db),
            users=SqlUsers(db),
            profiles=SqlProfiles(db),
            documents=SqlDocuments(db),
        )

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - readiness must report, not raise
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
