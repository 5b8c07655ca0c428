"""The vector index stops answering: writes still succeed and are indexed once it is back;
search answers a 503 problem with Retry-After; /readyz names the index. Run on both real
engines behind a fault switch; plus a Qdrant URL where nothing listens at start-up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.main import create_app
from service.storage.errors import VectorIndexUnreachable
from service.storage.factory import QDRANT_LOCAL
from service.settings import Settings
from tests.api.helpers import assert_problem, new_session, post_messages
from tests.conftest import app_for, migrated, start
from tests.faults.conftest import fault_settings, quick
from tests.faults.switch import FaultSwitch, switched_backends
from tests.live import free_port

ENGINES = {"edge": None, "qdrant-client-local": QDRANT_LOCAL}


@pytest.fixture(params=list(ENGINES))
async def engine(
    request: pytest.FixtureRequest, data_dir: Path, embedder: SentenceTransformerEmbedder
) -> AsyncIterator[tuple[httpx.AsyncClient, FaultSwitch]]:
    settings = fault_settings(data_dir, qdrant_url=ENGINES[request.param])
    await migrated(settings.sql_url)
    switch: list[FaultSwitch] = []
    app = create_app(settings, build=partial(switched_backends, embedder=embedder, switch=switch))
    async with start(app) as client:
        yield client, switch[0]


async def search(client: httpx.AsyncClient, query: str) -> httpx.Response:
    with quick():
        return await client.post("/v1/memories/search", json={"query": query, "user_id": "u1"})


async def found(client: httpx.AsyncClient, query: str, content: str, timeout: float = 30.0) -> None:
    """Bounded poll: a search for ``query`` finds the memory holding ``content``."""
    deadline = time.monotonic() + timeout
    while True:
        response = await search(client, query)
        if response.status_code == 200 and content in [h["memory"]["content"] for h in response.json()["items"]]:
            return
        assert time.monotonic() < deadline, f"{content!r} not found: {response.text}"
        await asyncio.sleep(0.1)


async def tried(switch: FaultSwitch, method: str, timeout: float = 10.0) -> None:
    """Bounded poll: a call of ``method`` was refused by the switch."""
    deadline = time.monotonic() + timeout
    while not switch.refused[method]:
        assert time.monotonic() < deadline, f"no {method} call was tried while down: {switch.refused}"
        await asyncio.sleep(0.05)


class TestVectorIndexDown:
    async def test_writes_succeed_search_answers_503_and_indexing_catches_up(
        self, engine: tuple[httpx.AsyncClient, FaultSwitch]
    ) -> None:
        client, switch = engine
        session = (await new_session(client))["id"]
        await post_messages(client, session, "I adopted a tabby cat named Miso")
        await found(client, "cat named Miso", "I adopted a tabby cat named Miso")

        switch.down = True
        with quick():
            await post_messages(client, session, "my sister Ines moved to Lisbon")
        body = assert_problem(await search(client, "where does Ines live"), 503, "vector_index_unavailable")
        assert "Errno" not in body["detail"]
        assert (await search(client, "Lisbon")).headers["Retry-After"].isdigit()
        with quick():
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "buffer": "ok", "vectors": "down"}

        with quick():
            context = await client.post(f"/v1/sessions/{session}/context", json={"max_tokens": 300, "query": "Ines"})
        assert context.status_code == 200  # recall is down, the session itself is not
        assert "my sister Ines moved to Lisbon" in context.json()["prompt"]
        assert [s["items"] for s in context.json()["sections"] if s["name"] == "memories"] == [[]]
        with quick():
            memory = await client.post("/v1/memories", json={"user_id": "u1", "content": "Ines plays the cello"})
        kept = memory.status_code == 201  # else refused as a whole, never half-kept (no 500)
        kept or assert_problem(memory, 503, "vector_index_unavailable")
        await tried(switch, "upsert")  # the background indexer met the outage
        switch.down = False
        await found(client, "where does Ines live", "my sister Ines moved to Lisbon")
        if kept:
            await found(client, "what does Ines play", "Ines plays the cello")
        assert (await client.get("/readyz")).status_code == 200


class TestQdrantUnreachableAtStartUp:
    async def test_start_up_fails_fast_naming_the_url(
        self,
        data_dir: Path,
        embedder: SentenceTransformerEmbedder,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        monkeypatch.setenv("MEMORY_QDRANT_URL", url)
        settings = Settings(data_dir=data_dir, auth_disabled=True, _env_file=None)  # type: ignore[call-arg]
        assert settings.qdrant_url == url
        await migrated(settings.sql_url)
        with quick(), caplog.at_level(logging.ERROR), pytest.raises(VectorIndexUnreachable, match="127.0.0.1"):
            async with start(app_for(settings, embedder)):
                pass
        assert any("cannot start" in r.getMessage() and url in r.getMessage() for r in caplog.records)
