"""The optional LLM path through the API: used when it answers well, never needed, never waited for."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from fastapi import FastAPI

from service.settings import Settings
from tests.api.helpers import drained, new_session
from tests.conftest import app_for, migrated, start
from tests.live import free_port
from tests.llm_server import FakeLlm

TRIP = ("My budget for the trip is 20,000 CNY", "I want a guesthouse with a view of the mountains")


async def llm_app(settings: Settings, embedder: Any, url: str, **changes: Any) -> FastAPI:
    changed = settings.model_copy(update={"llm_base_url": url, "llm_timeout_seconds": 2.0, **changes})
    await migrated(changed.sql_url)
    return app_for(changed, embedder)


def llm_calls(metrics_text: str, outcome: str) -> float:
    found = re.search(rf'^memory_llm_calls_total\{{outcome="{outcome}"\}} (\S+)$', metrics_text, re.M)
    assert found, f"no llm_calls series for {outcome}"
    return float(found.group(1))


async def say(client: httpx.AsyncClient, session_id: str, *texts: str) -> None:
    response = await client.post(f"/v1/sessions/{session_id}/messages", json={"messages": [{"role": "user", "content": t} for t in texts]})
    assert response.status_code == 201, response.text


async def test_a_good_llm_answer_becomes_the_summary(settings: Settings, embedder: Any) -> None:
    reply = {"summary": "The user plans a Swiss trip: 20,000 CNY, a guesthouse with a mountain view.", "topic": "switzerland trip",
             "keywords": ["budget", "guesthouse", "20,000 CNY"], "importance": 0.8}  # fmt: skip
    with FakeLlm(default=json.dumps(reply)) as llm:
        app = await llm_app(settings, embedder, llm.url, extract_facts=False, condense_every_messages=0)
        async with start(app) as client:
            await new_session(client, id="s1", user_id="u1")
            await say(client, "s1", *TRIP)
            [summary] = (await client.post("/v1/sessions/s1/condense")).json()["items"]
            assert summary["content"] == reply["summary"] and summary["topic"] == "switzerland trip"
            assert summary["importance"] == 0.8
            metrics = (await client.get("/metrics")).text
            assert llm_calls(metrics, "ok") >= 1
            assert re.search(r'^memory_llm_tokens_total\{direction="input"\} [1-9]', metrics, re.M)
        assert any("20,000 CNY" in json.dumps(r) for r in llm.requests), "the turns were sent to the model"


async def test_malformed_llm_output_falls_back_to_the_extractive_summary(settings: Settings, embedder: Any) -> None:
    with FakeLlm(default="Sure! Here is a summary: the trip.") as llm:
        app = await llm_app(settings, embedder, llm.url, extract_facts=False, condense_every_messages=0)
        async with start(app) as client:
            await new_session(client, id="s1", user_id="u1")
            await say(client, "s1", *TRIP)
            [summary] = (await client.post("/v1/sessions/s1/condense")).json()["items"]
            assert "20,000 CNY" in summary["content"]
            assert llm_calls((await client.get("/metrics")).text, "invalid") >= 1


async def test_an_unreachable_llm_neither_blocks_writes_nor_loses_facts(settings: Settings, embedder: Any) -> None:
    app = await llm_app(settings, embedder, f"http://127.0.0.1:{free_port()}/v1", condense_every_messages=2)
    async with start(app) as client:
        await new_session(client, id="s1", user_id="u1")
        await say(client, "s1", "I love coffee.", "I live in Lisbon.")
        await drained(client)
        facts = (await client.get("/v1/memories", params={"user_id": "u1", "type": "semantic"})).json()["items"]
        assert {f["metadata"].get("predicate") for f in facts} >= {"likes", "lives_in"}, "the rule-based extractor stood in"
        summaries = (await client.get("/v1/memories", params={"user_id": "u1", "type": "summary"})).json()["items"]
        assert len(summaries) == 1 and "coffee" in summaries[0]["content"]
        assert llm_calls((await client.get("/metrics")).text, "error") >= 1
