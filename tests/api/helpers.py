"""Small helpers for API tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code); returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["type"] and body["request_id"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body


async def new_session(client: httpx.AsyncClient, user_id: str = "u1", **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/sessions", json={"user_id": user_id, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def post_messages(client: httpx.AsyncClient, session_id: str, *contents: str, **extra: Any) -> list[dict[str, Any]]:
    batch = [{"role": "user" if i % 2 == 0 else "assistant", "content": c, **extra} for i, c in enumerate(contents)]
    response = await client.post(f"/v1/sessions/{session_id}/messages", json={"messages": batch})
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def queue_when(
    client: httpx.AsyncClient, done: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll /v1/admin/queue (bounded) until ``done(state)``; returns that state."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = (await client.get("/v1/admin/queue")).json()
        if done(state):
            return state
        assert time.monotonic() < deadline, f"queue never settled within {timeout}s: {state}"
        await asyncio.sleep(0.05)


async def drained(client: httpx.AsyncClient, timeout: float = 60.0) -> None:
    """Wait (bounded poll) until the background indexer has no pending jobs."""
    await queue_when(client, lambda state: state["pending"] == 0, timeout)


async def add_memories(client: httpx.AsyncClient, *memories: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/v1/memories", json={"memories": list(memories)})
    assert response.status_code in (200, 201), response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def search(client: httpx.AsyncClient, query: str, user_id: str = "u1", **extra: Any) -> list[dict[str, Any]]:
    response = await client.post("/v1/memories/search", json={"query": query, "user_id": user_id, **extra})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
