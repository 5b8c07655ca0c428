"""Redis stops or hangs: writes still succeed (SQL is the record), reads fall back to SQL,
/readyz names the buffer, and buffers recover when Redis is back (never serving a stale one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from tests.api.helpers import new_session, post_messages
from tests.conftest import app_for, migrated, start
from tests.faults.conftest import fault_settings, quick
from tests.faults.servers import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(
    redis_server: RedisServer, data_dir: Path, embedder: SentenceTransformerEmbedder
) -> AsyncIterator[httpx.AsyncClient]:
    redis_server.stop()
    redis_server.start()  # every test begins with a fresh, answering Redis
    settings = fault_settings(data_dir, redis_url=redis_server.url)
    await migrated(settings.sql_url)
    async with start(app_for(settings, embedder)) as c:
        yield c


async def buffer(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    with quick():
        response = await client.get(f"/v1/sessions/{session_id}/buffer")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contents(view: dict[str, Any]) -> list[str]:
    return [m["content"] for m in view["messages"]]


async def readiness(client: httpx.AsyncClient) -> httpx.Response:
    with quick():
        return await client.get("/readyz")


async def ready_again(client: httpx.AsyncClient, timeout: float = 10.0) -> None:
    """Bounded poll: /readyz answers 200 (the probe also drops buffers an outage left stale)."""
    deadline = time.monotonic() + timeout
    while (response := await readiness(client)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.1)


class TestRedisStopped:
    async def test_writes_succeed_reads_use_sql_and_buffers_are_rebuilt(
        self, client: httpx.AsyncClient, redis_server: RedisServer
    ) -> None:
        session = (await new_session(client))["id"]
        await post_messages(client, session, "one", "two")
        assert (await buffer(client, session))["rebuilt"] is True
        assert (await buffer(client, session))["rebuilt"] is False  # served by Redis

        redis_server.stop()
        with quick():
            await post_messages(client, session, "three")
        during = await buffer(client, session)
        assert contents(during) == ["one", "two", "three"] and during["rebuilt"] is True
        down = await readiness(client)
        assert down.status_code == 503
        readings = down.json()
        assert (readings["status"], readings["checks"]) == (
            "not_ready", {"database": "ok", "buffer": "down", "vectors": "ok"}
        )

        redis_server.start()  # same port, empty: the buffers are rebuilt from SQL on read
        await ready_again(client)
        assert (await buffer(client, session))["rebuilt"] is True
        after = await buffer(client, session)
        assert contents(after) == ["one", "two", "three"] and after["rebuilt"] is False


class TestRedisHung:
    async def test_requests_time_out_quickly_and_the_old_buffer_is_never_served(
        self, client: httpx.AsyncClient, redis_server: RedisServer
    ) -> None:
        session = (await new_session(client))["id"]
        await post_messages(client, session, "one")
        await buffer(client, session)
        assert (await buffer(client, session))["rebuilt"] is False

        redis_server.freeze()  # accepts connections, answers nothing
        with quick():
            await post_messages(client, session, "two")  # acknowledged; the buffer missed it
        assert contents(await buffer(client, session)) == ["one", "two"]
        assert (await readiness(client)).json()["checks"]["buffer"] == "down"

        redis_server.thaw()  # Redis is back with its old buffer, which lacks "two"
        await ready_again(client)
        rebuilt = await buffer(client, session)
        assert contents(rebuilt) == ["one", "two"] and rebuilt["rebuilt"] is True
        assert contents(await buffer(client, session)) == ["one", "two"]
