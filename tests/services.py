"""Where the real test servers are, and whether they answer (fail under CI=true, else skip)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

T = TypeVar("T")

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def postgres_url() -> str:
    return os.environ.get("MEMORY_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("MEMORY_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> str:
    """The URL when its server answers; otherwise fail under CI=true, else skip with the reason."""
    if _reachable(url, default_port):
        return url
    missing(f"{name} is not reachable at {url} (set MEMORY_TEST_{name.upper()}_URL or start it)")


def missing(message: str) -> NoReturn:
    """A test's server or tool is missing: fail under CI=true, else skip with the reason."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _in_thread(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop in another thread (safe inside a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result()


async def _admin(base_url: str, sql: str) -> None:
    admin = create_async_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await admin.dispose()


@contextmanager
def scratch_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``base_url``; dropped on exit."""
    name = f"memsvc_test_{uuid.uuid4().hex[:10]}"
    _in_thread(lambda: _admin(base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _in_thread(lambda: _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
