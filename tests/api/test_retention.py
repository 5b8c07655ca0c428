"""The retention policy on both backend sets: records past their retention leave SQL, the buffer
and the vector index; newer ones stay; the purge is counted in the metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.lifespan import State
from service.settings import Settings
from tests.api.helpers import drained, new_session, search
from tests.api.test_governance import import_lines, points_of
from tests.conftest import app_for, migrated, start

OLD = (datetime.now(UTC) - timedelta(days=90)).isoformat()
NEW = (datetime.now(UTC) - timedelta(days=1)).isoformat()


@pytest.fixture
async def retained(settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    policy = settings.model_copy(
        update={"message_retention_days": 30, "memory_retention_days": 30, "purge_interval_seconds": 3600}
    )
    await migrated(policy.sql_url)
    app = app_for(policy, embedder)
    async with start(app) as client:
        yield client, app


def memory_line(memory_id: str, content: str, created_at: str) -> dict[str, object]:
    return {
        "kind": "memory", "id": memory_id, "session_id": None, "agent_id": None, "type": "semantic",
        "content": content, "modality": "text", "media_url": None, "importance": 0.5, "topic": None,
        "keywords": [], "metadata": {}, "speaker": None, "event_time": created_at, "created_at": created_at,
        "updated_at": created_at, "expires_at": None, "source_ids": [], "position": None, "version": 1,
    }


class TestRetention:
    async def test_old_records_leave_every_store(self, retained: tuple[httpx.AsyncClient, FastAPI], settings: Settings) -> None:
        client, app = retained
        state: State = app.state.memory
        session = (await new_session(client, "u1"))["id"]
        posted = await client.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [
                {"role": "user", "content": "An old note about the harbour.", "created_at": OLD},
                {"role": "user", "content": "A fresh note about the garden.", "created_at": NEW},
            ]},
        )
        assert posted.status_code == 201
        assert (await client.get(f"/v1/sessions/{session}/buffer")).json()["messages"][0]["content"].startswith("An old")
        lines = [
            memory_line("0b7d5f4e-1111-4aaa-8bbb-000000000001", "I used to live near the harbour.", OLD),
            memory_line("0b7d5f4e-1111-4aaa-8bbb-000000000002", "I grow tomatoes in the garden.", NEW),
        ]
        assert (await import_lines(client, "u1", lines)).status_code == 200
        await drained(client)
        before = await points_of(app, settings.default_tenant, "u1")

        messages, memories = await state.retention.apply()
        assert messages >= 1 and memories >= 1
        await drained(client)

        kept = (await client.get(f"/v1/sessions/{session}/messages")).json()["items"]
        assert [m["content"] for m in kept] == ["A fresh note about the garden."]
        buffered = (await client.get(f"/v1/sessions/{session}/buffer")).json()["messages"]
        assert [m["content"] for m in buffered] == ["A fresh note about the garden."]
        contents = {h["memory"]["content"] for h in await search(client, "harbour garden tomatoes", user_id="u1", limit=50)}
        assert "I grow tomatoes in the garden." in contents and "I used to live near the harbour." not in contents
        assert await points_of(app, settings.default_tenant, "u1") == before - memories
        gone = await client.get("/v1/memories/0b7d5f4e-1111-4aaa-8bbb-000000000001/history")
        assert gone.status_code == 404 or gone.json()["items"] == []
        scraped = (await client.get("/metrics")).text
        assert 'memory_retention_purged_total{kind="messages"}' in scraped
        assert await state.retention.apply() == (0, 0)

    async def test_zero_keeps_everything(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        state: State = app.state.memory
        session = (await new_session(client, "u1"))["id"]
        await client.post(
            f"/v1/sessions/{session}/messages", json={"messages": [{"role": "user", "content": "ancient", "created_at": OLD}]}
        )
        assert await state.retention.apply() == (0, 0)
        assert len((await client.get(f"/v1/sessions/{session}/messages")).json()["items"]) == 1
