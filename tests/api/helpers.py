"""Small helpers for API tests."""

from __future__ import annotations

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
