"""/v1/sessions/{id}/messages and /buffer on both backend sets."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI

from service.settings import Settings
from tests.api.helpers import assert_problem, new_session, post_messages
from service.storage.factory import QDRANT_LOCAL
from tests.conftest import app_for, start


class TestAddMessages:
    async def test_stores_a_batch_with_token_counts(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        items = await post_messages(client, "s1", "Hello there!", "Hi, how can I help?")
        assert [m["content"] for m in items] == ["Hello there!", "Hi, how can I help?"]
        assert [m["role"] for m in items] == ["user", "assistant"]
        assert all(m["token_count"] > 0 and m["session_id"] == "s1" for m in items)

    async def test_keeps_name_metadata_and_client_times(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        batch = [{"role": "tool", "content": "42", "name": "calc", "created_at": "2023-05-08T13:56:00", "metadata": {"x": 1}}]
        item = (await client.post("/v1/sessions/s1/messages", json={"messages": batch})).json()["items"][0]
        assert item["name"] == "calc" and item["metadata"] == {"x": 1}
        assert item["created_at"].startswith("2023-05-08T13:56:00")

    async def test_unknown_session_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/sessions/nope/messages", json={"messages": [{"role": "user", "content": "x"}]})
        assert_problem(response, 404, "not_found")

    async def test_bad_input_gets_a_problem_and_stores_nothing(self, client: httpx.AsyncClient, settings: Settings) -> None:
        await new_session(client, id="s1")
        await post_messages(client, "s1", "keep me")
        url = "/v1/sessions/s1/messages"
        too_long = "x" * (settings.max_content_chars + 1)
        body = assert_problem(await client.post(url, json={"messages": [{"role": "user", "content": too_long}]}), 422, "limit_exceeded")
        assert str(settings.max_content_chars) in body["detail"]
        many = [{"role": "user", "content": "x"}] * (settings.max_batch_items + 1)
        body = assert_problem(await client.post(url, json={"messages": many}), 422, "limit_exceeded")
        assert str(settings.max_batch_items) in body["detail"]
        assert_problem(await client.post(url, json={"messages": []}), 422, "validation_failed")
        assert_problem(await client.post(url, json={"messages": [{"role": "wizard", "content": "x"}]}), 422)
        assert_problem(await client.post(url, content=b'{"messages": [', headers={"content-type": "application/json"}), 422, "malformed_json")
        assert_problem(await client.post(url, content=b"\xff\xfe", headers={"content-type": "application/json"}), 422)
        assert_problem(await client.post(url, json=["not", "an", "object"]), 422)
        history = (await client.get(url)).json()["items"]
        assert [m["content"] for m in history] == ["keep me"]

    async def test_a_body_over_the_byte_limit_is_413(self, client: httpx.AsyncClient, settings: Settings) -> None:
        await new_session(client, id="s1")
        huge = json.dumps({"messages": [{"role": "user", "content": "x" * settings.max_request_bytes}]})
        body = assert_problem(await client.post("/v1/sessions/s1/messages", content=huge, headers={"content-type": "application/json"}), 413, "payload_too_large")
        assert str(settings.max_request_bytes) in body["detail"]

    async def test_a_streamed_body_over_the_limit_is_413(self, client: httpx.AsyncClient, settings: Settings) -> None:
        await new_session(client, id="s1")
        chunk = b"x" * 65536

        async def stream():  # no content-length: the limit must hold while reading
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(settings.max_request_bytes // len(chunk) + 2):
                yield chunk
            yield b'"}]}'

        response = await client.post("/v1/sessions/s1/messages", content=stream(), headers={"content-type": "application/json"})
        assert_problem(response, 413, "payload_too_large")


class TestListMessages:
    async def test_pages_history_in_both_orders_with_time_filters(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        batch = [{"role": "user", "content": f"m{i}", "created_at": f"2024-01-01T00:00:0{i}Z"} for i in range(5)]
        await client.post("/v1/sessions/s1/messages", json={"messages": batch})
        asc = (await client.get("/v1/sessions/s1/messages", params={"limit": 3})).json()
        assert [m["content"] for m in asc["items"]] == ["m0", "m1", "m2"] and asc["next_cursor"]
        rest = (await client.get("/v1/sessions/s1/messages", params={"limit": 3, "cursor": asc["next_cursor"]})).json()
        assert [m["content"] for m in rest["items"]] == ["m3", "m4"] and rest["next_cursor"] is None
        desc = (await client.get("/v1/sessions/s1/messages", params={"order": "desc", "limit": 2})).json()
        assert [m["content"] for m in desc["items"]] == ["m4", "m3"]
        window = {"after": "2024-01-01T00:00:01Z", "before": "2024-01-01T00:00:03Z"}
        ranged = (await client.get("/v1/sessions/s1/messages", params=window)).json()
        assert [m["content"] for m in ranged["items"]] == ["m1", "m2"]

    async def test_bad_query_parameters_are_problems(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        assert_problem(await client.get("/v1/sessions/s1/messages", params={"order": "sideways"}), 422)
        assert_problem(await client.get("/v1/sessions/s1/messages", params={"limit": 0}), 422)
        assert_problem(await client.get("/v1/sessions/s1/messages", params={"after": "yesterday"}), 422)


class TestBuffer:
    async def test_last_n_returns_the_newest_in_order(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        for text in ("first", "second", "third"):
            await post_messages(client, "s1", text)
        body = (await client.get("/v1/sessions/s1/buffer", params={"last_n": 2})).json()
        assert [m["content"] for m in body["messages"]] == ["second", "third"]
        assert body["total_tokens"] == sum(m["token_count"] for m in body["messages"])
        assert body["cap"] > 0 and body["ttl_seconds"] > 0

    async def test_max_tokens_keeps_the_newest_that_fit(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        items = await post_messages(client, "s1", "one two three four five six", "seven eight", "nine")
        budget = items[1]["token_count"] + items[2]["token_count"]
        body = (await client.get("/v1/sessions/s1/buffer", params={"max_tokens": budget})).json()
        assert [m["content"] for m in body["messages"]] == ["seven eight", "nine"]
        assert body["total_tokens"] <= budget

    async def test_backdated_messages_keep_time_order(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        await post_messages(client, "s1", "now")
        await client.get("/v1/sessions/s1/buffer")
        old = [{"role": "user", "content": "earlier", "created_at": "2020-01-01T00:00:00Z"}]
        await client.post("/v1/sessions/s1/messages", json={"messages": old})
        body = (await client.get("/v1/sessions/s1/buffer")).json()
        assert [m["content"] for m in body["messages"]] == ["earlier", "now"]

    async def test_last_n_over_the_cap_is_a_clear_error(self, client: httpx.AsyncClient, settings: Settings) -> None:
        await new_session(client, id="s1")
        body = assert_problem(await client.get("/v1/sessions/s1/buffer", params={"last_n": settings.buffer_max_messages + 1}), 422)
        assert str(settings.buffer_max_messages) in body["detail"]

    async def test_restart_keeps_messages(self, app: FastAPI, settings: Settings, embedder) -> None:
        async with start(app) as client:
            await new_session(client, id="s1")
            await post_messages(client, "s1", "a", "b", "c")
        async with start(app_for(settings, embedder)) as client:
            body = (await client.get("/v1/sessions/s1/buffer", params={"last_n": 2})).json()
            assert [m["content"] for m in body["messages"]] == ["b", "c"]


class TestBufferRebuild:
    async def test_rebuilds_from_sql_after_redis_keys_are_deleted(self, redis_url: str, pg_url: str, tmp_path, embedder) -> None:
        from redis.asyncio import Redis

        from tests.conftest import migrated

        settings = Settings(data_dir=tmp_path, database_url=await migrated(pg_url), redis_url=redis_url, qdrant_url=QDRANT_LOCAL, default_tenant=f"rebuild-{uuid.uuid4().hex[:10]}", auth_disabled=True, _env_file=None)  # type: ignore[call-arg]
        async with start(app_for(settings, embedder)) as client:
            await new_session(client, id="s1")
            await post_messages(client, "s1", "a", "b")
            first = (await client.get("/v1/sessions/s1/buffer")).json()
            await post_messages(client, "s1", "c")
            cached = (await client.get("/v1/sessions/s1/buffer")).json()
            assert first["rebuilt"] and not cached["rebuilt"]
            redis = Redis.from_url(redis_url)
            keys = [k async for k in redis.scan_iter(match=f"*{settings.default_tenant}:s1*")]
            assert keys and await redis.delete(*keys) == len(keys)
            await redis.aclose()
            rebuilt = (await client.get("/v1/sessions/s1/buffer")).json()
            assert rebuilt["rebuilt"]
            assert [m["content"] for m in rebuilt["messages"]] == ["a", "b", "c"]
