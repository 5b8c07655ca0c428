"""The main context, rolling summaries, condensation, extracted facts and agent tools, on both
backend sets with the real model."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.embedding.tokens import BpeTokenCounter
from service.settings import Settings
from tests.api.helpers import assert_problem, drained, new_session, post_messages, search
from tests.conftest import app_for, migrated, start
from tests.unit.test_extractive import TRIP  # the example conversation, one place

TOKENS = BpeTokenCounter("o200k_base")
T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


async def post_turns(client: httpx.AsyncClient, session_id: str, *turns: tuple[str, str], start: datetime = T0) -> list[dict[str, Any]]:
    """Post (speaker name, text) turns, one second apart from ``start``; even turns are the user's."""
    batch = [
        {"role": "user" if i % 2 == 0 else "assistant", "name": name, "content": text, "created_at": (start + timedelta(seconds=i)).isoformat()}
        for i, (name, text) in enumerate(turns)
    ]
    response = await client.post(f"/v1/sessions/{session_id}/messages", json={"messages": batch})
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def user_says(client: httpx.AsyncClient, session_id: str, *texts: str) -> list[dict[str, Any]]:
    batch = [{"role": "user", "content": t} for t in texts]
    response = await client.post(f"/v1/sessions/{session_id}/messages", json={"messages": batch})
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def context(client: httpx.AsyncClient, session_id: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/sessions/{session_id}/context", json={"max_tokens": max_tokens, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["tokens"] == TOKENS.count(body["prompt"]) <= max_tokens
    return body


async def app_with(settings: Settings, embedder: Any, **changes: Any) -> Any:
    """An app on the test's backends with some settings changed."""
    changed = settings.model_copy(update=changes)
    await migrated(changed.sql_url)
    return app_for(changed, embedder)


def section(body: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in body["sections"] if s["name"] == name]
    return found


def item_ids(body: dict[str, Any], name: str) -> list[str]:
    return [i["id"] for i in section(body, name)["items"]]


async def memories_of(client: httpx.AsyncClient, user_id: str, type_: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/memories", params={"user_id": user_id, "type": type_, "limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestContext:
    async def test_unknown_session_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/v1/sessions/nope/context", json={"max_tokens": 100}), 404, "not_found")

    async def test_an_empty_session_of_a_new_user_gives_empty_sections(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="nobody")
        body = await context(client, "s1", 500)
        assert body["prompt"] == "" and body["tokens"] == 0 and body["max_tokens"] == 500
        assert [s["name"] for s in body["sections"]] == ["profile", "summary", "memories", "documents", "recent"]
        assert all(s["items"] == [] and s["text"] == "" and s["tokens"] == 0 for s in body["sections"])

    async def test_memories_from_other_sessions_carry_date_and_speaker(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="old", user_id="u1")
        old = await post_turns(
            client, "old",
            ("Caroline", "I went to the pottery workshop in Portland yesterday."),
            ("Melanie", "That sounds lovely! What did you make?"),
            ("Caroline", "A blue bowl for my grandmother."),
        )  # fmt: skip
        await new_session(client, id="now", user_id="u1")
        now = await user_says(client, "now", "What did I make at the pottery workshop?")
        await drained(client)
        body = await context(client, "now", 400)
        memories = section(body, "memories")
        assert old[0]["id"] in item_ids(body, "memories")
        assert "## 2023-05-08" in memories["text"]
        assert "Caroline: I went to the pottery workshop in Portland yesterday." in memories["text"]
        assert item_ids(body, "recent") == [now[0]["id"]]
        assert now[0]["id"] not in item_ids(body, "memories"), "nothing in memories that is also in recent"
        assert body["prompt"].index("# Memories") < body["prompt"].index("# Recent messages")
        scored = [i for i in memories["items"] if i["score"] is not None]
        assert scored and all(i["tokens"] > 0 for i in memories["items"])
        assert old[2]["id"] in item_ids(body, "memories"), "the neighbouring turn that completes it comes along"

    async def test_the_budget_holds_from_tiny_to_large(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        await post_turns(client, "s1", *[("Ann" if i % 2 == 0 else "Bot", f"Turn {i}: we talked about hiking trail number {i} near the lake.") for i in range(30)])
        await drained(client)
        sizes = {}
        for max_tokens in (1, 3, 10, 40, 120, 400, 2000):
            body = await context(client, "s1", max_tokens, query="Which hiking trail near the lake?")
            sizes[max_tokens] = body["tokens"]
        assert sizes[1] == 0 and sizes[2000] > sizes[120] > 0

    async def test_explicit_query_and_types(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        fact = await client.post("/v1/memories", json={"user_id": "u1", "content": "Ann is allergic to peanuts.", "type": "semantic"})
        assert fact.status_code == 201
        fact_id = fact.json()["items"][0]["memory"]["id"]
        await user_says(client, "s1", "Peanut butter cookies are my favourite snack.")
        await drained(client)
        body = await context(client, "s1", 300, query="Does Ann have any allergies?")
        # A semantic fact enters by relevance (recall), not as a profile line whatever the query.
        assert fact_id in item_ids(body, "memories") and fact_id not in item_ids(body, "profile")
        assert "(semantic) Ann is allergic to peanuts." in body["prompt"]
        only_episodes = await context(client, "s1", 300, query="Does Ann have any allergies?", types=["episodic"])
        assert fact_id not in item_ids(only_episodes, "memories")

    async def test_profile_memories_fill_the_profile_section(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        made = await client.post("/v1/memories", json={"user_id": "u1", "content": "Prefers to be called Annie.", "type": "profile"})
        assert made.status_code == 201
        body = await context(client, "s1", 200)
        assert "# Profile\n- Prefers to be called Annie." in body["prompt"]

    @pytest.mark.parametrize(
        "payload",
        [{"max_tokens": 0}, {"max_tokens": 200_001}, {}, {"max_tokens": 10, "types": ["dream"]}, {"max_tokens": 10, "extra": 1}],
    )
    async def test_bad_requests_are_422_problems(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
        await new_session(client, id="s1")
        assert_problem(await client.post("/v1/sessions/s1/context", json=payload), 422)


class TestRollingSummary:
    async def test_unknown_session_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/sessions/nope/summary"), 404, "not_found")

    async def test_empty_until_a_message_leaves_the_buffer(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        await post_messages(client, "s1", "hello there", "hi")
        await drained(client)
        body = (await client.get("/v1/sessions/s1/summary")).json()
        assert body == {"text": "", "tokens": 0, "message_count": 0, "covers_until": None, "updated_at": None}

    async def test_messages_that_fall_out_of_the_buffer_are_folded(self, settings: Settings, embedder) -> None:
        async with start(await app_with(settings, embedder, buffer_max_messages=4, condense_every_messages=0)) as client:
            await new_session(client, id="s1", user_id="u1")
            turns = [("Ann", f"Fact number {i}: my cousin Bernard keeps {i + 2} goats in Vermont.") for i in range(6)]
            posted = await post_turns(client, "s1", *turns)
            await post_turns(client, "s1", *[("Ann", f"later message {i}") for i in range(4)], start=T0 + timedelta(hours=1))
            await drained(client)
            body = (await client.get("/v1/sessions/s1/summary")).json()
            assert body["message_count"] == 6
            assert datetime.fromisoformat(body["covers_until"]) == datetime.fromisoformat(posted[-1]["created_at"])
            assert "Bernard" in body["text"] and body["tokens"] == TOKENS.count(body["text"]) <= settings.summary_max_tokens
            assert body["updated_at"] is not None
            buffer = (await client.get("/v1/sessions/s1/buffer")).json()
            assert [m["content"] for m in buffer["messages"]] == [f"later message {i}" for i in range(4)]
            ctx = await context(client, "s1", 1000, query="goats")
            assert "# Summary of earlier conversation" in ctx["prompt"] and section(ctx, "summary")["items"]
            metrics = (await client.get("/metrics")).text
            assert re.search(r"^memory_summaries_total [1-9]", metrics, re.M), "the dashboard's summary panel has data"
            assert re.search(r"^memory_extractions_total [1-9]", metrics, re.M)
            assert re.search(r"^memory_context_seconds_count [1-9]", metrics, re.M)

    async def test_the_token_cap_also_pushes_messages_out(self, settings: Settings, embedder) -> None:
        async with start(await app_with(settings, embedder, buffer_max_tokens=30, condense_every_messages=0)) as client:
            await new_session(client, id="s1", user_id="u1")
            await post_turns(client, "s1", *[("Ann", f"This is a fairly long message about topic {i} and more.") for i in range(6)])
            await drained(client)
            buffer = (await client.get("/v1/sessions/s1/buffer")).json()
            assert buffer["total_tokens"] <= 30 and len(buffer["messages"]) < 6
            summary = (await client.get("/v1/sessions/s1/summary")).json()
            assert summary["message_count"] == 6 - len(buffer["messages"])


class TestCondensation:
    async def test_the_trip_example_end_to_end(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="plan", user_id="traveller")
        posted = await user_says(client, "plan", *TRIP)
        response = await client.post("/v1/sessions/plan/condense")
        assert response.status_code == 200, response.text
        [summary] = response.json()["items"]
        assert summary["type"] == "summary" and summary["source_ids"] == [m["id"] for m in posted]
        assert summary["topic"] and summary["keywords"] and 0 <= summary["importance"] <= 1
        assert datetime.fromisoformat(summary["metadata"]["start"]) == datetime.fromisoformat(posted[0]["created_at"])
        assert datetime.fromisoformat(summary["event_time"]) == datetime.fromisoformat(posted[0]["created_at"])
        assert datetime.fromisoformat(summary["metadata"]["end"]) == datetime.fromisoformat(posted[-1]["created_at"])
        assert (await client.post("/v1/sessions/plan/condense")).json()["items"] == [], "nothing new to condense"
        await drained(client)

        await new_session(client, id="later", user_id="traveller")
        body = await context(client, "later", 120, query="What budget and lodging did I plan?")
        assert "20,000 CNY" in body["prompt"] and "guesthouse" in body["prompt"]
        raw = [m["id"] for m in posted]
        assert len(set(raw) & set(item_ids(body, "memories"))) < len(raw), "not all six raw messages"

    async def test_every_n_messages_are_condensed_in_the_background(self, settings: Settings, embedder) -> None:
        async with start(await app_with(settings, embedder, condense_every_messages=5)) as client:
            await new_session(client, id="s1", user_id="u1")
            posted = await post_turns(client, "s1", *[("Ann", f"Sentence {i} about the sailing trip to Crete.") for i in range(12)])
            await drained(client)
            summaries = sorted(await memories_of(client, "u1", "summary"), key=lambda m: m["event_time"])
            assert [m["source_ids"] for m in summaries] == [[p["id"] for p in posted[:5]], [p["id"] for p in posted[5:10]]]
            rest = (await client.post("/v1/sessions/s1/condense")).json()["items"]
            assert [m["source_ids"] for m in rest] == [[p["id"] for p in posted[10:]]]

    async def test_the_keyword_index_finds_a_summary_by_its_topic(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="plan", user_id="traveller")
        await user_says(client, "plan", *TRIP)
        [summary] = (await client.post("/v1/sessions/plan/condense")).json()["items"]
        await drained(client)
        topic_word = summary["keywords"][0]
        hits = await search(client, topic_word, user_id="traveller", mode="keyword", limit=20)
        assert summary["id"] in [h["memory"]["id"] for h in hits]

    async def test_deleting_the_session_removes_its_summaries(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="plan", user_id="traveller")
        await user_says(client, "plan", *TRIP)
        [summary] = (await client.post("/v1/sessions/plan/condense")).json()["items"]
        assert (await client.delete("/v1/sessions/plan")).status_code == 204
        assert_problem(await client.get(f"/v1/memories/{summary['id']}"), 404)


class TestExtractedFacts:
    async def test_user_statements_become_structured_semantic_memories(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        [said] = await user_says(client, "s1", "I love coffee.")
        await drained(client)
        facts = await memories_of(client, "u1", "semantic")
        [fact] = [f for f in facts if f["metadata"].get("predicate") == "likes"]
        assert fact["metadata"] == {"subject": "user", "predicate": "likes", "object": "coffee"}
        assert fact["source_ids"] == [said["id"]] and fact["session_id"] == "s1"

    async def test_a_changed_single_valued_fact_is_a_new_version(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        await user_says(client, "s1", "I live in Paris.")
        await drained(client)
        await user_says(client, "s1", "I live in Berlin.")
        await drained(client)
        facts = [f for f in await memories_of(client, "u1", "semantic") if f["metadata"].get("predicate") == "lives_in"]
        assert len(facts) == 1 and facts[0]["metadata"]["object"] == "Berlin" and facts[0]["version"] == 2
        history = (await client.get(f"/v1/memories/{facts[0]['id']}/history")).json()["versions"]
        assert history[0]["snapshot"]["metadata"]["object"] == "Paris" and history[-1]["op"] == "updated"

    async def test_assistant_messages_are_not_taken_as_user_facts(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        response = await client.post("/v1/sessions/s1/messages", json={"messages": [{"role": "assistant", "content": "I love coffee."}]})
        assert response.status_code == 201
        await drained(client)
        assert [f for f in await memories_of(client, "u1", "semantic") if f["metadata"].get("predicate")] == []


class TestTools:
    async def test_lists_openai_function_schemas(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/tools")
        assert response.status_code == 200
        tools = response.json()
        names = [t["function"]["name"] for t in tools]
        assert set(names) >= {"search_memory", "save_memory", "update_memory", "delete_memory", "get_context"}
        for tool in tools:
            assert tool["type"] == "function" and tool["function"]["description"]
            assert tool["function"]["parameters"]["type"] == "object"
            json.dumps(tool)  # plain JSON an LLM API accepts
        search_params = next(t for t in tools if t["function"]["name"] == "search_memory")["function"]["parameters"]
        assert search_params["required"] == ["query"] and set(search_params["properties"]) == {"query", "before", "after", "types", "limit"}

    async def call(self, client: httpx.AsyncClient, name: str, arguments: Any, session: str = "s1") -> httpx.Response:
        return await client.post(f"/v1/sessions/{session}/tools/{name}", json={"arguments": arguments})

    async def test_save_search_update_delete_round_trip(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        saved = await self.call(client, "save_memory", '{"content": "Ann\'s dog is called Biscuit.", "importance": 0.8}')
        assert saved.status_code == 200, saved.text
        memory_id = saved.json()["data"]["id"]
        assert saved.json()["data"]["status"] == "created" and memory_id in saved.json()["content"]
        found = await self.call(client, "search_memory", {"query": "What is the dog's name?", "limit": 3})
        assert found.status_code == 200 and memory_id in [h["id"] for h in found.json()["data"]]
        assert "Biscuit" in found.json()["content"]
        updated = await self.call(client, "update_memory", {"id": memory_id, "content": "Ann's dog is called Pretzel."})
        assert updated.status_code == 200 and updated.json()["data"]["version"] == 2
        got = (await client.get(f"/v1/memories/{memory_id}")).json()
        assert got["content"] == "Ann's dog is called Pretzel."
        ctx = await self.call(client, "get_context", {"max_tokens": 200, "query": "dog"})
        assert ctx.status_code == 200 and "Pretzel" in ctx.json()["content"] and ctx.json()["data"]["tokens"] <= 200
        deleted = await self.call(client, "delete_memory", json.dumps({"id": memory_id}))
        assert deleted.status_code == 200
        assert_problem(await client.get(f"/v1/memories/{memory_id}"), 404)

    async def test_bad_arguments_name_the_argument(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        body = assert_problem(await self.call(client, "search_memory", {"query": "x", "limit": 500}), 422)
        assert "limit" in body["detail"]
        body = assert_problem(await self.call(client, "save_memory", {}), 422)
        assert "content" in body["detail"]
        body = assert_problem(await self.call(client, "save_memory", '{"content": '), 422)
        assert "JSON" in body["detail"]
        assert_problem(await self.call(client, "get_context", {"max_tokens": 10, "bogus": 1}), 422)

    async def test_unknown_tool_session_or_foreign_memory_is_404(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        await new_session(client, id="s2", user_id="u2")
        assert_problem(await self.call(client, "summon_dragon", {}), 404)
        assert_problem(await self.call(client, "search_memory", {"query": "x"}, session="nope"), 404)
        theirs = (await self.call(client, "save_memory", {"content": "u2 likes jazz."}, session="s2")).json()["data"]["id"]
        assert_problem(await self.call(client, "delete_memory", {"id": theirs}), 404)
        assert_problem(await self.call(client, "update_memory", {"id": theirs, "content": "hijacked"}), 404)
        assert (await client.get(f"/v1/memories/{theirs}")).json()["content"] == "u2 likes jazz."
