"""examples/langchain_chain.py against a live service: history and recall reach the prompt, both sides are stored."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from memory_service_client import MemoryServiceClient

from tests.live import live_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import langchain_chain  # noqa: E402


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Prompts(BaseCallbackHandler):
    """Keeps the messages of every chat-model call."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.calls.extend(messages)


def two_turns(url: str) -> tuple[list[str], Prompts, list[tuple[str, str]]]:
    with MemoryServiceClient(url) as client:
        client.memories.add(user_id="ann", content="Ann is allergic to peanuts.", event_time="2024-05-01T12:00:00Z")
        model = FakeListChatModel(responses=["Nice to meet you, Ann.", "Avoid peanuts."])
        chain = langchain_chain.build_chain(client, "ann", model, k=2)
        prompts = Prompts()
        answers = langchain_chain.chat(chain, "lc-ex", ["Hi, I'm Ann.", "What should I avoid eating?"], [prompts])
        stored = [(m.role, m.content) for m in client.sessions.messages("lc-ex").items]
    return answers, prompts, stored


async def test_the_chain_reads_history_and_memories_and_stores_both_sides(app: FastAPI) -> None:
    async with live_server(app) as url:
        answers, prompts, stored = await asyncio.to_thread(two_turns, url)
    assert answers == ["Nice to meet you, Ann.", "Avoid peanuts."]
    assert stored == [("user", "Hi, I'm Ann."), ("assistant", "Nice to meet you, Ann."),
                      ("user", "What should I avoid eating?"), ("assistant", "Avoid peanuts.")]
    first, second = prompts.calls
    assert [m.type for m in first] == ["system", "human"]
    assert [(m.type, m.content) for m in second[1:]] == [
        ("human", "Hi, I'm Ann."), ("ai", "Nice to meet you, Ann."), ("human", "What should I avoid eating?")
    ], "the session's history comes before the new input"
    assert "- [2024-05-01] Ann is allergic to peanuts." in str(second[0].content), "recall reaches the system prompt"


async def test_main_runs_the_demo(app: FastAPI, capsys: pytest.CaptureFixture[str]) -> None:
    async with live_server(app) as url:
        code = await asyncio.to_thread(langchain_chain.main, ["--url", url, "--user", "bea", "--session", "demo"])
        with MemoryServiceClient(url) as client:
            session = await asyncio.to_thread(client.sessions.get, "demo")
    out = capsys.readouterr().out
    assert code == 0 and session.user_id == "bea"
    assert "> I'm allergic to peanuts.\nNoted, I'll remember that." in out
    assert "(session demo: 4 messages stored)" in out
