"""Shared fixtures: the two backend sets (embedded and real servers) and an app client on each."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from service.main import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.storage.sql import migrate  # noqa: E402
from tests import services  # noqa: E402

_migrated: set[str] = set()


async def migrated(url: str) -> str:
    """The database at ``url`` upgraded to head (once per test run)."""
    if url not in _migrated:
        await asyncio.to_thread(migrate.upgrade, url)
        _migrated.add(url)
    return url


@pytest.fixture(scope="session")
def pg_url() -> str:
    return services.require("database", services.postgres_url(), 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.require("redis", services.redis_url(), 6379)


@pytest.fixture(params=["embedded", "servers"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for one backend set; a fresh tenant per test keeps tests apart on shared servers."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    if backend == "embedded":
        return Settings(data_dir=tmp_path, default_tenant=tenant, _env_file=None)  # type: ignore[call-arg]
    pg = request.getfixturevalue("pg_url")
    rd = request.getfixturevalue("redis_url")
    return Settings(
        data_dir=tmp_path, database_url=pg, redis_url=rd, default_tenant=tenant, _env_file=None  # type: ignore[call-arg]
    )


@asynccontextmanager
async def start(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def app(settings: Settings) -> FastAPI:
    await migrated(settings.sql_url)
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with start(app) as c:
        yield c
