"""memory_service_client.langchain against a live service: the chat history and the retriever."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from memory_service_client import AsyncMemoryServiceClient, MemoryServiceClient, NotFoundError
from memory_service_client.langchain import (
    MemoryServiceChatMessageHistory,
    MemoryServiceRetriever,
    document_from_hit,
)
from memory_service_client.models import SearchHit

from tests.live import live_server


def history_flow(url: str) -> None:
    with MemoryServiceClient(url) as client:
        history = MemoryServiceChatMessageHistory(client=client, session_id="lc-1", user_id="ann", agent_id="bot")
        assert history.messages == [], "no session yet: no history"
        history.add_messages([
            SystemMessage("Be brief."),
            HumanMessage("I moved to Lisbon last spring."),
            AIMessage("", tool_calls=[{"name": "save_memory", "args": {"content": "x"}, "id": "call-1"}]),
            ToolMessage("Saved.", tool_call_id="call-1", name="save_memory"),
            AIMessage("How are you finding it?"),
        ])
        session = client.sessions.get("lc-1")
        assert (session.user_id, session.agent_id) == ("ann", "bot"), "created on first use"
        read = history.messages
        assert [type(m) for m in read] == [SystemMessage, HumanMessage, ToolMessage, AIMessage]
        assert [m.content for m in read] == ["Be brief.", "I moved to Lisbon last spring.", "Saved.",
                                             "How are you finding it?"], "an AI turn with no text is not stored"
        assert read[2].name == "save_memory" and all(m.id for m in read)
        stored = client.sessions.messages("lc-1").items
        assert stored[2].metadata == {"tool_call_id": "call-1"} and stored[2].role == "tool"
        history.add_user_message("Loving the light.")
        assert history.messages[-1] == HumanMessage("Loving the light.", id=history.messages[-1].id)
        windowed = MemoryServiceChatMessageHistory(client=client, session_id="lc-1", last_n=2)
        assert [m.content for m in windowed.messages] == ["How are you finding it?", "Loving the light."]

        kept = client.memories.add(user_id="ann", content="Ann lives in Lisbon.").memory
        history.clear()
        assert history.messages == [] and client.sessions.messages("lc-1").items == []
        again = client.sessions.get("lc-1")
        assert (again.user_id, again.agent_id) == ("ann", "bot"), "the same session, started again"
        assert client.memories.get(kept.id).content == "Ann lives in Lisbon.", "long-term memory stays"
        episodic = client.memories.list(user_id="ann", type="episodic").items
        assert episodic == [], "the episodic memories of the cleared messages went with them"

        orphan = MemoryServiceChatMessageHistory(client=client, session_id="no-such-session")
        with pytest.raises(NotFoundError):
            orphan.add_messages([HumanMessage("hi")])


async def test_chat_history_over_the_sessions_api(app: FastAPI) -> None:
    async with live_server(app) as url:
        await asyncio.to_thread(history_flow, url)


async def test_chat_history_async_methods(app: FastAPI) -> None:
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as client:
        history = MemoryServiceChatMessageHistory(async_client=client, session_id="lc-2", user_id="bob")
        assert await history.aget_messages() == []
        await history.aadd_messages([HumanMessage("Hello there."), AIMessage("Hi Bob.")])
        assert [m.content for m in await history.aget_messages()] == ["Hello there.", "Hi Bob."]
        await history.aclear()
        assert await history.aget_messages() == []
        assert (await client.sessions.get("lc-2")).user_id == "bob"
        with pytest.raises(RuntimeError, match="async"):
            _ = history.messages


def retriever_flow(url: str) -> list[str]:
    with MemoryServiceClient(url) as client:
        client.memories.add(user_id="ann", content="Ann is allergic to peanuts.", type="semantic",
                            event_time="2024-03-01T10:00:00Z")
        client.memories.add(user_id="ann", content="Ann went hiking in Sintra with Marta.", type="episodic")
        client.memories.add(user_id="ann", content="Ann plays the cello.", type="procedural")
        client.memories.add(user_id="bob", content="Bob is allergic to cats.")
        retriever = MemoryServiceRetriever(client=client, user_id="ann", k=2)
        documents = retriever.invoke("what is Ann allergic to?")
        assert len(documents) == 2
        top = documents[0]
        assert top.page_content == "Ann is allergic to peanuts."
        assert top.metadata["type"] == "semantic" and top.metadata["source"] == "memory"
        assert top.metadata["score"] >= documents[1].metadata["score"] > 0
        assert datetime.fromisoformat(top.metadata["event_time"]).year == 2024
        assert top.id == top.metadata["id"] == client.memories.get(top.metadata["id"]).id
        episodic = MemoryServiceRetriever(client=client, user_id="ann", k=5, search_kwargs={"types": ["episodic"]})
        return [d.page_content for d in episodic.invoke("hiking")]


async def test_retriever_returns_documents_with_metadata(app: FastAPI) -> None:
    async with live_server(app) as url:
        assert await asyncio.to_thread(retriever_flow, url) == ["Ann went hiking in Sintra with Marta."]
        async with AsyncMemoryServiceClient(url) as client:
            retriever = MemoryServiceRetriever(async_client=client, user_id="ann", k=1)
            [document] = await retriever.ainvoke("cello")
            assert document.page_content == "Ann plays the cello." and document.metadata["type"] == "procedural"


def test_retriever_passes_sources_only_when_given() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"items": []})

    with MemoryServiceClient("http://svc", transport=httpx.MockTransport(handler)) as client:
        MemoryServiceRetriever(client=client, user_id="ann", k=3).invoke("q")
        MemoryServiceRetriever(client=client, user_id="ann", sources=["memories", "documents"]).invoke("q")
    assert bodies[0] == {"query": "q", "user_id": "ann", "limit": 3}
    assert bodies[1] == {"query": "q", "user_id": "ann", "limit": 4, "sources": ["memories", "documents"]}
    with pytest.raises(ValueError, match="client"):
        MemoryServiceRetriever(user_id="ann")


def test_a_document_hit_becomes_a_document_with_its_chunk_metadata() -> None:
    hit = SearchHit.model_validate({
        "source": "document", "score": 1.7, "parts": {"semantic": 0.9, "keyword": 0.8}, "content": "Refunds take 5 days.",
        "document_id": "doc-1", "title": "Refund policy", "chunk_index": 2, "chunk_id": "doc-1#2", "heading": "Refunds",
    })
    document = document_from_hit(hit)
    assert document.page_content == "Refunds take 5 days." and document.id == "doc-1#2"
    assert document.metadata == {"id": "doc-1#2", "score": 1.7, "type": "document", "event_time": None,
                                 "source": "document", "document_id": "doc-1", "title": "Refund policy",
                                 "chunk_index": 2, "heading": "Refunds"}
