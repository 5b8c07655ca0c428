"""API keys, tenants, roles, rate limits and Idempotency-Key, through the API on both backend sets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.settings import Settings
from tests.api.auth_fixtures import bearer, new_tenant, secured
from tests.api.helpers import assert_problem
from tests.conftest import app_for, migrated, start


@pytest.fixture
async def secure_settings(settings: Settings) -> Settings:
    return secured(settings)


@pytest.fixture
async def secure_app(secure_settings: Settings, embedder: SentenceTransformerEmbedder) -> FastAPI:
    await migrated(secure_settings.sql_url)
    return app_for(secure_settings, embedder)


@pytest.fixture
async def anon(secure_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with start(secure_app) as c:
        yield c


@pytest.fixture
def admin_key(secure_settings: Settings) -> str:
    assert secure_settings.admin_key is not None
    return secure_settings.admin_key.get_secret_value()


async def clear_of_window_edge() -> None:
    """Start a rate-limit test well inside one minute window, so the count cannot reset halfway."""
    left = 60 - time.time() % 60
    if left < 10:
        await asyncio.sleep(left + 0.1)


def assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


class TestAuthentication:
    async def test_no_key_is_401_with_challenge(self, anon: httpx.AsyncClient) -> None:
        for method, path in (("GET", "/v1/sessions"), ("POST", "/v1/memories/search"), ("GET", "/v1/admin/keys")):
            assert_unauthorized(await anon.request(method, path))

    async def test_wrong_and_malformed_keys_are_401(self, anon: httpx.AsyncClient) -> None:
        assert_unauthorized(await anon.get("/v1/sessions", headers=bearer("msk_not-a-key")))
        assert_unauthorized(await anon.get("/v1/sessions", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
        assert_unauthorized(await anon.get("/v1/sessions", headers={"Authorization": "Bearer "}))
        assert_unauthorized(await anon.get("/v1/sessions", headers={"X-API-Key": "nope"}))

    async def test_bearer_and_x_api_key_both_work(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        assert (await anon.get("/v1/sessions", headers=tenant.headers)).status_code == 200
        assert (await anon.get("/v1/sessions", headers={"X-API-Key": tenant.key})).status_code == 200

    async def test_ops_endpoints_need_no_key(self, anon: httpx.AsyncClient) -> None:
        assert (await anon.get("/healthz")).status_code == 200
        assert (await anon.get("/openapi.json")).status_code == 200

    async def test_the_admin_key_uses_the_data_api_of_its_own_tenant(
        self, anon: httpx.AsyncClient, admin_key: str, secure_settings: Settings
    ) -> None:
        made = await anon.post("/v1/sessions", json={"user_id": "ops"}, headers=bearer(admin_key))
        assert made.status_code == 201
        listed = await anon.get("/v1/sessions", headers=bearer(admin_key))
        assert [s["id"] for s in listed.json()["items"]] == [made.json()["id"]]


class TestAdminApi:
    async def test_tenants_are_created_once_and_listed(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        a = await anon.post("/v1/admin/tenants", json={"id": "acme-1"}, headers=bearer(admin_key))
        assert a.status_code == 201 and a.json()["id"] == "acme-1"
        assert_problem(await anon.post("/v1/admin/tenants", json={"id": "acme-1"}, headers=bearer(admin_key)), 409)
        assert_problem(await anon.post("/v1/admin/tenants", json={"id": "bad id!"}, headers=bearer(admin_key)), 422)
        listed = (await anon.get("/v1/admin/tenants", params={"limit": 1000}, headers=bearer(admin_key))).json()
        assert "acme-1" in [t["id"] for t in listed["items"]]

    async def test_tenant_listing_pages_with_a_cursor(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        for i in range(3):
            await anon.post("/v1/admin/tenants", json={"id": f"page-{i}"}, headers=bearer(admin_key))
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await anon.get("/v1/admin/tenants", params=params, headers=bearer(admin_key))).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert {"page-0", "page-1", "page-2"} <= set(seen) and len(seen) == len(set(seen))

    async def test_a_key_is_shown_once_and_stored_as_a_hash(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        listed = (await anon.get("/v1/admin/keys", params={"tenant_id": tenant.id}, headers=bearer(admin_key))).json()
        (key,) = listed["items"]
        assert key["id"] == tenant.key_id and key["role"] == "client" and key["revoked_at"] is None
        assert "key" not in key and tenant.key not in str(listed) and tenant.key.startswith(key["prefix"])

    async def test_a_key_for_an_unknown_tenant_is_404(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        response = await anon.post("/v1/admin/keys", json={"tenant_id": "nobody-here"}, headers=bearer(admin_key))
        assert_problem(response, 404)

    async def test_a_client_key_on_the_admin_api_is_403(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        for method, path in (("GET", "/v1/admin/keys"), ("POST", "/v1/admin/tenants"), ("GET", "/v1/admin/queue")):
            assert_problem(await anon.request(method, path, json={"id": "x"}, headers=tenant.headers), 403, "forbidden")

    async def test_an_admin_key_made_through_the_api_manages_keys(
        self, anon: httpx.AsyncClient, admin_key: str
    ) -> None:
        second_admin = await new_tenant(anon, admin_key, role="admin")
        assert (await anon.get("/v1/admin/keys", headers=second_admin.headers)).status_code == 200

    async def test_a_revoked_key_is_refused_at_once(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        assert (await anon.get("/v1/sessions", headers=tenant.headers)).status_code == 200
        assert (await anon.delete(f"/v1/admin/keys/{tenant.key_id}", headers=bearer(admin_key))).status_code == 204
        assert_unauthorized(await anon.get("/v1/sessions", headers=tenant.headers))
        assert (await anon.delete(f"/v1/admin/keys/{tenant.key_id}", headers=bearer(admin_key))).status_code == 204
        assert_problem(await anon.delete("/v1/admin/keys/no-such-key", headers=bearer(admin_key)), 404)
        listed = (await anon.get("/v1/admin/keys", params={"tenant_id": tenant.id}, headers=bearer(admin_key))).json()
        assert listed["items"][0]["revoked_at"] is not None

    async def test_revocation_reaches_every_process(
        self, secure_settings: Settings, embedder: SentenceTransformerEmbedder, admin_key: str, backend: str
    ) -> None:
        if backend == "embedded":
            pytest.skip("the embedded default is one process (Qdrant Edge holds its shard's lock)")
        await migrated(secure_settings.sql_url)
        async with start(app_for(secure_settings, embedder)) as one, start(app_for(secure_settings, embedder)) as two:
            tenant = await new_tenant(one, admin_key)
            assert (await two.get("/v1/sessions", headers=tenant.headers)).status_code == 200
            assert (await one.delete(f"/v1/admin/keys/{tenant.key_id}", headers=bearer(admin_key))).status_code == 204
            assert_unauthorized(await two.get("/v1/sessions", headers=tenant.headers))


class TestAdminKeyBootstrap:
    async def test_a_new_admin_key_value_revokes_the_old_one(
        self, secure_settings: Settings, embedder: SentenceTransformerEmbedder, admin_key: str
    ) -> None:
        await migrated(secure_settings.sql_url)
        async with start(app_for(secure_settings, embedder)) as first:
            assert (await first.get("/v1/admin/keys", headers=bearer(admin_key))).status_code == 200
        rotated = secured(secure_settings)
        assert rotated.admin_key is not None
        async with start(app_for(rotated, embedder)) as second:
            assert_unauthorized(await second.get("/v1/admin/keys", headers=bearer(admin_key)))
            assert (await second.get("/v1/admin/keys", headers=bearer(rotated.admin_key.get_secret_value()))).status_code == 200

    def test_a_short_admin_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="16 characters"):
            Settings(admin_key="short", _env_file=None)  # type: ignore[call-arg,arg-type]


class TestRateLimit:
    @pytest.fixture
    async def limited(self, settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        limited = secured(settings, rate_limit_per_minute=3)
        await migrated(limited.sql_url)
        assert limited.admin_key is not None
        async with start(app_for(limited, embedder)) as client:
            yield client, limited.admin_key.get_secret_value()

    async def test_past_the_limit_is_429_with_retry_after(self, limited: tuple[httpx.AsyncClient, str]) -> None:
        client, admin_key = limited
        await clear_of_window_edge()
        tenant = await new_tenant(client, admin_key)  # two admin requests: the admin key's own budget
        for _ in range(3):
            assert (await client.get("/v1/sessions", headers=tenant.headers)).status_code == 200
        refused = await client.get("/v1/sessions", headers=tenant.headers)
        assert_problem(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        other = await client.post(
            "/v1/admin/keys", json={"tenant_id": tenant.id}, headers=bearer(admin_key)
        )  # the admin key's third request: still within its own limit
        assert other.status_code == 201
        assert (await client.get("/v1/sessions", headers=bearer(other.json()["key"]))).status_code == 200


    async def test_processes_share_the_limit_through_redis(
        self, settings: Settings, embedder: SentenceTransformerEmbedder, backend: str
    ) -> None:
        if backend == "embedded":
            pytest.skip("the embedded default is one process: its counters are in-process")
        limited = secured(settings, rate_limit_per_minute=4)
        await migrated(limited.sql_url)
        async with start(app_for(limited, embedder)) as one, start(app_for(limited, embedder)) as two:
            await clear_of_window_edge()
            assert limited.admin_key is not None
            tenant = await new_tenant(one, limited.admin_key.get_secret_value())
            answers = [await c.get("/v1/sessions", headers=tenant.headers) for c in (one, two, one, two, one)]
            assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]


class TestIdempotency:
    async def test_a_retry_gets_the_first_answer_and_stores_nothing_twice(
        self, anon: httpx.AsyncClient, admin_key: str
    ) -> None:
        tenant = await new_tenant(anon, admin_key)
        headers = {**tenant.headers, "Idempotency-Key": "msg-retry-1"}
        session = (await anon.post("/v1/sessions", json={"user_id": "u1"}, headers=tenant.headers)).json()
        body = {"messages": [{"role": "user", "content": "I moved to Lisbon in March."}]}
        first = await anon.post(f"/v1/sessions/{session['id']}/messages", json=body, headers=headers)
        again = await anon.post(f"/v1/sessions/{session['id']}/messages", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        listed = (await anon.get(f"/v1/sessions/{session['id']}/messages", headers=tenant.headers)).json()
        assert [m["content"] for m in listed["items"]] == ["I moved to Lisbon in March."]

    async def test_the_same_key_with_another_body_is_422(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        headers = {**tenant.headers, "Idempotency-Key": "sess-1"}
        assert (await anon.post("/v1/sessions", json={"user_id": "u1"}, headers=headers)).status_code == 201
        assert_problem(await anon.post("/v1/sessions", json={"user_id": "u2"}, headers=headers), 422)
        listed = (await anon.get("/v1/sessions", headers=tenant.headers)).json()
        assert [s["user_id"] for s in listed["items"]] == ["u1"]

    async def test_keys_are_per_tenant(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        a, b = await new_tenant(anon, admin_key), await new_tenant(anon, admin_key)
        made_a = await anon.post("/v1/sessions", json={"user_id": "u1"}, headers={**a.headers, "Idempotency-Key": "k"})
        made_b = await anon.post("/v1/sessions", json={"user_id": "u1"}, headers={**b.headers, "Idempotency-Key": "k"})
        assert made_a.status_code == made_b.status_code == 201
        assert made_a.json()["id"] != made_b.json()["id"] and "idempotent-replayed" not in made_b.headers

    async def test_a_failed_request_may_be_retried(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        headers = {**tenant.headers, "Idempotency-Key": "later"}
        assert_problem(await anon.post("/v1/sessions/none/messages", json={"messages": [{"role": "user", "content": "x"}]}, headers=headers), 404)
        await anon.post("/v1/sessions", json={"user_id": "u1", "id": "none"}, headers=tenant.headers)
        retried = await anon.post(
            "/v1/sessions/none/messages", json={"messages": [{"role": "user", "content": "x"}]}, headers=headers
        )
        assert retried.status_code == 201

    async def test_concurrent_retries_store_once(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        tenant = await new_tenant(anon, admin_key)
        headers = {**tenant.headers, "Idempotency-Key": "burst"}
        body = {"memories": [{"user_id": "u1", "content": "Allergic to peanuts."}]}
        answers = await asyncio.gather(*(anon.post("/v1/memories", json=body, headers=headers) for _ in range(5)))
        assert {r.status_code for r in answers} <= {200, 201, 409}
        done = [r for r in answers if r.status_code in (200, 201)]
        assert done and all(r.json() == done[0].json() for r in done)
        listed = (await anon.get("/v1/memories", params={"user_id": "u1"}, headers=tenant.headers)).json()
        assert len(listed["items"]) == 1

    async def test_a_bad_key_is_422(self, anon: httpx.AsyncClient, admin_key: str) -> None:
        headers = {**bearer(admin_key), "Idempotency-Key": "x" * 256}
        assert_problem(await anon.post("/v1/sessions", json={"user_id": "u1"}, headers=headers), 422)

    async def test_the_header_is_declared_on_every_post(self, anon: httpx.AsyncClient) -> None:
        document = (await anon.get("/openapi.json")).json()
        posts = [ops["post"] for path, ops in document["paths"].items() if "post" in ops and path.startswith("/v1/")]
        assert posts and all(
            "Idempotency-Key" in [p["name"] for p in op.get("parameters", [])] for op in posts
        )
