"""Tenant isolation: tenant B's key against tenant A's objects, on every endpoint, on both backend sets.

Another tenant's objects answer 404 (never 403), listings and searches never show them, ids chosen by
clients are per tenant, and nothing B does changes what A stored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.settings import Settings
from tests.api.auth_fixtures import Tenant, bearer, new_tenant, secured
from tests.api.helpers import assert_problem
from tests.conftest import app_for, migrated, start

SHARED_ID = "chat-42"  # the chatbot's own session id, used by both tenants
PRIVATE = "Tenant A's secret: the vault code is 7731."
A_USER = "a-only-user"  # a user only A has (made by a profile field)


@dataclass(frozen=True, slots=True)
class World:
    client: httpx.AsyncClient
    admin_key: str
    a: Tenant
    b: Tenant
    a_session: str  # a session only A has
    a_memory: str
    a_document: str

    async def as_a(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.a.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def as_b(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.b.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


async def _drained(client: httpx.AsyncClient, admin_key: str, tenant_id: str) -> None:
    import asyncio

    for _ in range(600):
        queue = (await client.get("/v1/admin/queue", params={"tenant_id": tenant_id}, headers=bearer(admin_key))).json()
        if queue["pending"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("queue not drained")


@pytest.fixture
async def world(settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[World]:
    secure = secured(settings)
    assert secure.admin_key is not None
    admin_key = secure.admin_key.get_secret_value()
    await migrated(secure.sql_url)
    app: FastAPI = app_for(secure, embedder)
    async with start(app) as client:
        a, b = await new_tenant(client, admin_key), await new_tenant(client, admin_key)
        for tenant in (a, b):
            made = await client.post("/v1/sessions", json={"user_id": "u1", "id": SHARED_ID}, headers=tenant.headers)
            assert made.status_code == 201, made.text  # no 409 that would reveal A's id to B
        only_a = (await client.post("/v1/sessions", json={"user_id": "u1"}, headers=a.headers)).json()["id"]
        posted = await client.post(
            f"/v1/sessions/{only_a}/messages",
            json={"messages": [{"role": "user", "content": PRIVATE}]},
            headers=a.headers,
        )
        assert posted.status_code == 201
        memory = await client.post(
            "/v1/memories", json={"memories": [{"user_id": "u1", "content": PRIVATE}]}, headers=a.headers
        )
        assert memory.status_code == 201, memory.text
        made_user = await client.patch(f"/v1/users/{A_USER}/profile", json={"fields": {"note": PRIVATE}}, headers=a.headers)
        assert made_user.status_code == 200, made_user.text
        document = await client.post(
            "/v1/documents", json={"title": "Vault", "content": PRIVATE, "user_id": "u1"}, headers=a.headers
        )
        assert document.status_code == 201, document.text
        await _drained(client, admin_key, a.id)
        yield World(client, admin_key, a, b, only_a, memory.json()["items"][0]["memory"]["id"], document.json()["id"])


def _id_calls(w: World) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation on one of A's objects, as B would call it (method, path, request kwargs)."""
    s, m = w.a_session, w.a_memory
    message = {"messages": [{"role": "user", "content": "hello"}]}
    return [
        ("GET", f"/v1/sessions/{s}", {}),
        ("PATCH", f"/v1/sessions/{s}", {"json": {"metadata": {"x": 1}}}),
        ("DELETE", f"/v1/sessions/{s}", {}),
        ("GET", f"/v1/sessions/{s}/messages", {}),
        ("POST", f"/v1/sessions/{s}/messages", {"json": message}),
        ("GET", f"/v1/sessions/{s}/buffer", {}),
        ("POST", f"/v1/sessions/{s}/context", {"json": {"max_tokens": 200}}),
        ("GET", f"/v1/sessions/{s}/summary", {}),
        ("POST", f"/v1/sessions/{s}/condense", {}),
        ("POST", f"/v1/sessions/{s}/tools/search_memory", {"json": {"arguments": {"query": "vault"}}}),
        ("GET", f"/v1/memories/{m}", {}),
        ("PATCH", f"/v1/memories/{m}", {"json": {"content": "overwritten by B"}}),
        ("DELETE", f"/v1/memories/{m}", {}),
        ("GET", f"/v1/memories/{m}/history", {}),
        ("GET", f"/v1/users/{A_USER}", {}),
        ("GET", f"/v1/users/{A_USER}/profile", {}),
        ("GET", f"/v1/users/{A_USER}/export", {}),
        ("DELETE", f"/v1/users/{A_USER}", {}),
        ("GET", f"/v1/documents/{w.a_document}", {}),
        ("GET", f"/v1/documents/{w.a_document}/chunks", {}),
        ("DELETE", f"/v1/documents/{w.a_document}", {}),
    ]


#: Operations that name no object of another tenant: checked below by what they return.
LISTINGS = {
    ("GET", "/v1/sessions"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/memories"),
    ("POST", "/v1/memories"),
    ("POST", "/v1/memories/search"),
    ("POST", "/v1/memories/import"),
    ("GET", "/v1/tools"),
    ("GET", "/v1/users"),
    ("GET", "/v1/documents"),
    ("POST", "/v1/documents"),
    ("PATCH", "/v1/users/{user_id}/profile"),  # user ids are per tenant: B's patch makes B's own user
    ("POST", "/v1/users/{user_id}/import"),  # likewise: B's import restores into B's own user
}


class TestEveryEndpoint:
    async def test_another_tenants_objects_are_404(self, world: World) -> None:
        for method, path, kwargs in _id_calls(world):
            assert_problem(await world.as_b(method, path, **kwargs), 404)
        # ...and nothing B tried changed what A stored.
        session = await world.as_a("GET", f"/v1/sessions/{world.a_session}")
        assert session.status_code == 200 and session.json()["metadata"] == {}
        messages = (await world.as_a("GET", f"/v1/sessions/{world.a_session}/messages")).json()["items"]
        assert [x["content"] for x in messages] == [PRIVATE]
        memory = await world.as_a("GET", f"/v1/memories/{world.a_memory}")
        assert memory.status_code == 200 and memory.json()["content"] == PRIVATE

    async def test_listings_and_searches_never_show_them(self, world: World) -> None:
        sessions = (await world.as_b("GET", "/v1/sessions")).json()["items"]
        assert [s["id"] for s in sessions] == [SHARED_ID]
        assert (await world.as_b("GET", "/v1/memories", params={"user_id": "u1"})).json()["items"] == []
        assert (await world.as_b("GET", "/v1/documents")).json()["items"] == []
        for mode in ("hybrid", "semantic", "keyword"):
            body = {"query": "vault code", "user_id": "u1", "mode": mode, "sources": ["memories", "documents"]}
            found = await world.as_b("POST", "/v1/memories/search", json=body)
            assert found.status_code == 200 and found.json()["items"] == [], mode
        body = {"query": "vault code", "user_id": "u1", "sources": ["memories", "documents"]}
        own = (await world.as_a("POST", "/v1/memories/search", json=body)).json()["items"]
        assert PRIVATE in [h["memory"]["content"] for h in own if h["source"] == "memory"]  # the search itself works
        assert PRIVATE in [h["content"] for h in own if h["source"] == "document"]

    async def test_the_same_user_and_session_id_are_separate_per_tenant(self, world: World) -> None:
        posted = await world.as_b(
            "POST", f"/v1/sessions/{SHARED_ID}/messages", json={"messages": [{"role": "user", "content": "B's note"}]}
        )
        assert posted.status_code == 201
        a_msgs = (await world.as_a("GET", f"/v1/sessions/{SHARED_ID}/messages")).json()["items"]
        assert a_msgs == []
        context = (await world.as_b("POST", f"/v1/sessions/{SHARED_ID}/context", json={"max_tokens": 500})).json()
        assert PRIVATE not in context["prompt"] and "vault" not in context["prompt"]
        b_memory = await world.as_b("POST", "/v1/memories", json={"memories": [{"user_id": "u1", "content": PRIVATE}]})
        assert b_memory.status_code == 201
        assert b_memory.json()["items"][0]["memory"]["id"] != world.a_memory  # no dedup across tenants

    async def test_an_import_of_b_cannot_reach_as_session(self, world: World) -> None:
        line = {
            "kind": "message", "id": "7c0e7a52-0000-4000-8000-0000000000aa", "session_id": world.a_session,
            "role": "user", "content": "planted by B", "name": None, "metadata": {},
            "created_at": "2024-01-01T00:00:00Z", "token_count": 3,
        }
        planted = await world.as_b(
            "POST", f"/v1/users/{A_USER}/import", content=json.dumps(line).encode(),
            headers={"content-type": "application/x-ndjson"},
        )
        assert_problem(planted, 422)
        messages = (await world.as_a("GET", f"/v1/sessions/{world.a_session}/messages")).json()["items"]
        assert [m["content"] for m in messages] == [PRIVATE]
        assert (await world.as_a("GET", f"/v1/users/{A_USER}")).status_code == 200  # B's DELETE did nothing

    async def test_users_and_profiles_are_per_tenant(self, world: World) -> None:
        assert A_USER not in [u["id"] for u in (await world.as_b("GET", "/v1/users")).json()["items"]]
        mine = await world.as_b("PATCH", f"/v1/users/{A_USER}/profile", json={"fields": {"note": "B's own"}})
        assert mine.status_code == 200 and mine.json()["fields"] == {"note": "B's own"} and mine.json()["facts"] == []
        theirs = (await world.as_a("GET", f"/v1/users/{A_USER}/profile")).json()
        assert theirs["fields"] == {"note": PRIVATE}
        b_user = (await world.as_b("GET", "/v1/users/u1")).json()
        assert b_user["memory_count"] == 0 and b_user["session_count"] == 1  # only B's own chat-42

    async def test_a_tool_call_of_b_cannot_reach_as_memory(self, world: World) -> None:
        for name, arguments in (
            ("update_memory", {"id": world.a_memory, "content": "B was here"}),
            ("delete_memory", {"id": world.a_memory}),
        ):
            response = await world.as_b("POST", f"/v1/sessions/{SHARED_ID}/tools/{name}", json={"arguments": arguments})
            assert_problem(response, 404)
        assert (await world.as_a("GET", f"/v1/memories/{world.a_memory}")).json()["content"] == PRIVATE

    async def test_the_suite_covers_every_data_endpoint(self, world: World) -> None:
        document = (await world.client.get("/openapi.json")).json()
        declared = {
            (method.upper(), path)
            for path, operations in document["paths"].items()
            if path.startswith("/v1/") and not path.startswith("/v1/admin")
            for method in operations
        }
        templated = {(m, _template(p, world)) for m, p, _ in _id_calls(world)}
        missing = declared - templated - LISTINGS
        assert not missing, f"add these operations to the isolation suite: {sorted(missing)}"


def _template(path: str, w: World) -> str:
    return (
        path.replace(w.a_session, "{session_id}")
        .replace(w.a_memory, "{memory_id}")
        .replace(w.a_document, "{document_id}")
        .replace(A_USER, "{user_id}")
        .replace("/tools/search_memory", "/tools/{name}")
    )
