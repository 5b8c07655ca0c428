"""examples/chat_loop.py against a live service and the loopback OpenAI-compatible test server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.live import live_server
from tests.llm_server import FakeLlm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from chat_loop import ChatLoop  # noqa: E402


def tool_call_completion(name: str, arguments: dict[str, object]) -> str:
    call = {"id": "call-1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]})


async def test_a_turn_routes_the_models_tool_calls_and_stores_both_sides(app: FastAPI) -> None:
    async with live_server(app) as url:
        with FakeLlm() as llm:
            llm.raw(tool_call_completion("save_memory", {"content": "The user's cat is called Miso.", "importance": 0.7}))
            llm.reply("Nice to meet Miso!")
            with httpx.Client(base_url=url, timeout=30) as service, httpx.Client(base_url=llm.url, timeout=30) as model:
                loop = ChatLoop(service, model, "fake-model", "chat-1")
                await asyncio.to_thread(loop.start, "ann")
                answer = await asyncio.to_thread(loop.turn, "My cat is called Miso.")
            first, second = llm.requests
        assert answer == "Nice to meet Miso!"
        assert {t["function"]["name"] for t in first["tools"]} >= {"search_memory", "save_memory", "get_context"}
        assert "My cat is called Miso." in first["messages"][0]["content"], "the context holds the new message"
        [tool_message] = [m for m in second["messages"] if m["role"] == "tool"]
        # Saved, or merged into the fact the extractor already took from the same message (a race).
        assert tool_message["tool_call_id"] == "call-1" and tool_message["content"].startswith(("Saved", "Merged"))
        assert "Miso" in tool_message["content"]
        async with httpx.AsyncClient(base_url=url) as client:
            stored = (await client.get("/v1/sessions/chat-1/messages")).json()["items"]
            assert [(m["role"], m["content"]) for m in stored] == [("user", "My cat is called Miso."), ("assistant", "Nice to meet Miso!")]
            memories = (await client.get("/v1/memories", params={"user_id": "ann", "type": "semantic"})).json()["items"]
            # One fact about Miso: the tool's text, or the extractor's when it came first and the save merged into it.
            about_miso = [m["content"] for m in memories if "cat is called Miso" in m["content"]]
            assert about_miso in (["The user's cat is called Miso."], ["User's cat is called Miso."]), about_miso
