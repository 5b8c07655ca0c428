"""/v1/memories: CRUD, history, de-duplication and expiry, on both backend sets with the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from service.domain.upkeep import purge_expired
from service.settings import Settings
from tests.api.helpers import add_memories, assert_problem, drained, new_session, search

FACT = {"user_id": "u1", "content": "Ann is allergic to peanuts.", "type": "semantic", "topic": "health"}


class TestCreateMemories:
    async def test_one_memory_gets_defaults_and_keywords(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/memories", json=FACT)
        assert response.status_code == 201, response.text
        [item] = response.json()["items"]
        memory = item["memory"]
        assert item["status"] == "created" and memory["version"] == 1
        assert memory["importance"] == 0.5 and memory["modality"] == "text"
        assert "peanuts" in [k.lower() for k in memory["keywords"]]
        assert memory["event_time"] == memory["created_at"]

    async def test_a_batch_and_every_field_round_trip(self, client: httpx.AsyncClient) -> None:
        image = {
            "user_id": "u1",
            "content": "A photo of a red bicycle leaning on a wall.",
            "type": "episodic",
            "modality": "image",
            "media_url": "https://example.com/bike.jpg",
            "importance": 0.9,
            "keywords": ["bicycle"],
            "metadata": {"album": "summer"},
            "event_time": "2023-07-01T10:00:00Z",
            "source_ids": ["m-1"],
        }
        items = await add_memories(client, FACT, image)
        got = (await client.get(f"/v1/memories/{items[1]['memory']['id']}")).json()
        for key in ("content", "modality", "media_url", "importance", "keywords", "metadata", "source_ids"):
            assert got[key] == image[key]
        assert got["event_time"].startswith("2023-07-01T10:00:00")

    async def test_identical_content_returns_the_kept_memory(self, client: httpx.AsyncClient) -> None:
        [first] = await add_memories(client, FACT)
        response = await client.post("/v1/memories", json={**FACT, "content": "  ann is ALLERGIC to peanuts. "})
        assert response.status_code == 200
        [again] = response.json()["items"]
        assert again["status"] == "duplicate" and again["memory"]["id"] == first["memory"]["id"]
        other_type = await add_memories(client, {**FACT, "type": "episodic"})
        assert other_type[0]["status"] == "created"
        listed = (await client.get("/v1/memories", params={"user_id": "u1"})).json()["items"]
        assert len(listed) == 2

    async def test_duplicates_inside_one_batch_are_kept_once(self, client: httpx.AsyncClient) -> None:
        items = await add_memories(client, FACT, FACT)
        assert [i["status"] for i in items] == ["created", "duplicate"]
        assert items[0]["memory"]["id"] == items[1]["memory"]["id"]

    async def test_near_duplicates_are_merged(self, client: httpx.AsyncClient) -> None:
        [first] = await add_memories(client, {**FACT, "importance": 0.4})
        [near] = await add_memories(client, {**FACT, "content": "Ann is allergic to peanuts!", "importance": 0.8, "source_ids": ["m9"]})
        assert near["status"] == "merged" and near["memory"]["id"] == first["memory"]["id"]
        assert near["memory"]["importance"] == 0.8 and near["memory"]["source_ids"] == ["m9"]
        history = (await client.get(f"/v1/memories/{first['memory']['id']}/history")).json()["versions"]
        assert [v["op"] for v in history] == ["created", "merged"]
        [different] = await add_memories(client, {**FACT, "content": "Ann plays the cello in a quartet."})
        assert different["status"] == "created"

    async def test_bad_input_is_a_problem(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert_problem(await client.post("/v1/memories", json={**FACT, "type": "dream"}), 422)
        assert_problem(await client.post("/v1/memories", json={**FACT, "importance": 2}), 422)
        assert_problem(await client.post("/v1/memories", json={**FACT, "content": "   "}), 422, "validation_failed")
        too_long = {**FACT, "content": "x" * (settings.max_content_chars + 1)}
        assert_problem(await client.post("/v1/memories", json=too_long), 422, "limit_exceeded")
        many = {"memories": [FACT] * (settings.max_batch_items + 1)}
        assert_problem(await client.post("/v1/memories", json=many), 422, "limit_exceeded")
        assert (await client.get("/v1/memories")).json()["items"] == []


class TestReadChangeDelete:
    async def test_patch_keeps_history_and_reindexes(self, client: httpx.AsyncClient) -> None:
        [item] = await add_memories(client, FACT)
        mid = item["memory"]["id"]
        patched = await client.patch(f"/v1/memories/{mid}", json={"content": "Ann is allergic to shellfish.", "importance": 0.9})
        assert patched.status_code == 200 and patched.json()["version"] == 2
        assert "shellfish" in [k.lower() for k in patched.json()["keywords"]]
        history = (await client.get(f"/v1/memories/{mid}/history")).json()["versions"]
        assert [(v["version"], v["op"]) for v in history] == [(1, "created"), (2, "updated")]
        assert history[1]["changes"]["content"] == ["Ann is allergic to peanuts.", "Ann is allergic to shellfish."]
        await drained(client)
        hits = await search(client, "shellfish allergy", mode="keyword")
        assert [h["memory"]["id"] for h in hits] == [mid]

    async def test_delete_leaves_a_tombstone_and_removes_it_from_recall(self, client: httpx.AsyncClient) -> None:
        [item] = await add_memories(client, FACT)
        mid = item["memory"]["id"]
        assert (await client.delete(f"/v1/memories/{mid}")).status_code == 204
        assert_problem(await client.get(f"/v1/memories/{mid}"), 404, "not_found")
        assert_problem(await client.delete(f"/v1/memories/{mid}"), 404)
        history = (await client.get(f"/v1/memories/{mid}/history")).json()["versions"]
        assert [v["op"] for v in history] == ["created", "deleted"]
        await drained(client)
        assert await search(client, "peanut allergy") == []

    async def test_unknown_ids_and_fields(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/memories/nope"), 404)
        assert_problem(await client.get("/v1/memories/nope/history"), 404)
        assert_problem(await client.patch("/v1/memories/nope", json={"importance": 0.1}), 404)
        [item] = await add_memories(client, FACT)
        assert_problem(await client.patch(f"/v1/memories/{item['memory']['id']}", json={"user_id": "u2"}), 422)

    async def test_list_filters_and_pages(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s9")
        await add_memories(
            client,
            {"user_id": "u1", "content": "fact one", "topic": "a", "event_time": "2023-01-01T00:00:00Z"},
            {"user_id": "u1", "content": "event two", "type": "episodic", "event_time": "2023-02-01T00:00:00Z"},
            {"user_id": "u1", "content": "how to three", "type": "procedural", "session_id": "s9", "event_time": "2023-03-01T00:00:00Z"},
            {"user_id": "u2", "content": "someone else"},
        )
        get = lambda **p: client.get("/v1/memories", params=p)  # noqa: E731
        assert len((await get(user_id="u1")).json()["items"]) == 3
        assert {m["content"] for m in (await get(type=["episodic", "procedural"])).json()["items"]} == {"how to three", "event two"}
        assert [m["content"] for m in (await get(topic="a")).json()["items"]] == ["fact one"]
        assert [m["content"] for m in (await get(session_id="s9")).json()["items"]] == ["how to three"]
        window = (await get(user_id="u1", after="2023-01-15T00:00:00Z", before="2023-03-01T00:00:00Z")).json()
        assert [m["content"] for m in window["items"]] == ["event two"]
        first = (await get(limit=3)).json()
        rest = (await get(limit=3, cursor=first["next_cursor"])).json()
        assert len(first["items"]) == 3 and len(rest["items"]) == 1 and rest["next_cursor"] is None


class TestExpiry:
    async def test_expired_memories_vanish_and_are_purged(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        [keep, gone] = await add_memories(client, {**FACT, "expires_at": soon}, {**FACT, "content": "Ann owns a cat named Miso."})
        gone_id = gone["memory"]["id"]
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        assert (await client.patch(f"/v1/memories/{gone_id}", json={"expires_at": past})).status_code == 200
        assert_problem(await client.get(f"/v1/memories/{gone_id}"), 404)
        assert [m["id"] for m in (await client.get("/v1/memories")).json()["items"]] == [keep["memory"]["id"]]
        await drained(client)
        assert all(h["memory"]["id"] != gone_id for h in await search(client, "cat named Miso"))
        assert await purge_expired(app.state.memory.backends.db) >= 1
        history = (await client.get(f"/v1/memories/{gone_id}/history")).json()["versions"]
        assert history[-1]["op"] == "expired"


class TestEmbedderUnavailable:
    async def test_a_closed_embedder_is_a_503_problem_not_a_500(self, settings: Settings) -> None:
        from functools import partial

        from service.embedding.sentence_transformer import SentenceTransformerEmbedder
        from service.lifespan import open_backends
        from service.main import create_app
        from tests.conftest import migrated, start

        class Encoder:
            def get_embedding_dimension(self) -> int:
                return 384

            def encode(self, inputs: list[str], **kwargs: object) -> list[list[float]]:
                return [[1.0] + [0.0] * 383 for _ in inputs]

        closed = SentenceTransformerEmbedder(Encoder())  # never started: every request is refused
        await migrated(settings.sql_url)
        async with start(create_app(settings, build=partial(open_backends, embedder=closed))) as client:
            response = await client.post("/v1/memories", json=FACT)
            body = assert_problem(response, 503, "embedder_unavailable")
            assert response.headers["retry-after"] == "1" and "embedding" in body["detail"]
            assert (await client.get("/v1/memories", params={"user_id": "u1"})).json()["items"] == []
