"""Shared fixtures: the two backend sets (embedded and real servers) and an app client on each."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from service.embedding.sentence_transformer import SentenceTransformerEmbedder  # noqa: E402
from service.lifespan import open_backends  # noqa: E402
from service.main import create_app  # noqa: E402
from service.storage.factory import QDRANT_LOCAL  # noqa: E402
from service.storage.ports import Embedder  # noqa: E402
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
def pg_url() -> Iterator[str]:
    """A scratch Postgres database for this test run, dropped at the end (no leftovers between runs)."""
    with services.scratch_database(services.require("database", services.postgres_url(), 5432)) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.require("redis", services.redis_url(), 6379)


@pytest.fixture(params=["embedded", "servers"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder in memory when /dev/shm exists (creating an Edge shard's indexes on disk is slow)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="memsvc-test-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def settings(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for one backend set; a fresh tenant per test keeps tests apart on shared servers."""
    tmp_path = data_dir
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    if backend == "embedded":
        return Settings(data_dir=tmp_path, default_tenant=tenant, auth_disabled=True, _env_file=None)  # type: ignore[call-arg]
    pg = request.getfixturevalue("pg_url")
    rd = request.getfixturevalue("redis_url")
    return Settings(
        data_dir=tmp_path,
        database_url=pg,
        redis_url=rd,
        qdrant_url=QDRANT_LOCAL,
        default_tenant=tenant,
        auth_disabled=True,  # tests/api/test_auth.py and the isolation suite run with keys
        _env_file=None,  # type: ignore[call-arg]
    )


@asynccontextmanager
async def start(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(scope="session")
async def embedder() -> AsyncIterator[SentenceTransformerEmbedder]:
    """The real packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    model = await SentenceTransformerEmbedder.load(None, batch_size=64)
    await model.start()
    yield model
    await model.close()


def app_for(settings: Settings, embedder: Embedder) -> FastAPI:
    """An app on the settings' real backends, sharing the already loaded embedding model."""
    return create_app(settings, build=partial(open_backends, embedder=embedder))


@pytest.fixture
async def app(settings: Settings, embedder: SentenceTransformerEmbedder) -> FastAPI:
    await migrated(settings.sql_url)
    return app_for(settings, embedder)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with start(app) as c:
        yield c
