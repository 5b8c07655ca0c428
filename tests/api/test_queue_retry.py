"""POST /v1/admin/queue/{job_id}/retry: a parked job runs again, on both backend sets, admin keys only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.domain.indexing import SYNC_MEMORY
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.lifespan import State
from service.settings import Settings
from service.storage.sql.models import JobRow
from tests.api.auth_fixtures import bearer, new_tenant, secured
from tests.api.helpers import add_memories, assert_problem, drained, queue_when, search
from tests.conftest import app_for, migrated, start


async def park(state: State, tenant_id: str, subject: str) -> int:
    """A job parked as failed, written in one transaction so no worker can claim it first."""
    async with state.backends.db.transaction() as repos:
        (job_id,) = await repos.jobs.enqueue(tenant_id, SYNC_MEMORY, [subject])
        await repos.jobs.fail(job_id, "VectorIndexUnreachable: boom")
    return job_id


@pytest.fixture
async def running(app: FastAPI) -> AsyncIterator[tuple[State, httpx.AsyncClient]]:
    async with start(app) as client:
        yield app.state.memory, client


class TestRetryJob:
    async def test_a_parked_job_runs_again_and_completes(
        self, running: tuple[State, httpx.AsyncClient], settings: Settings
    ) -> None:
        state, client = running
        (written,) = await add_memories(client, {"user_id": "u1", "content": "The boat is moored at pier nine"})
        memory_id = written["memory"]["id"]
        await drained(client)
        job_id = await park(state, settings.default_tenant, memory_id)

        before = (await client.get("/v1/admin/queue")).json()
        assert (before["pending"], before["failed"]) == (0, 1)
        assert [(f["id"], f["subject"], f["attempts"]) for f in before["failures"]] == [(job_id, memory_id, 0)]

        retried = await client.post(f"/v1/admin/queue/{job_id}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["failed"] == 0 and retried.json()["failures"] == []

        after = await queue_when(client, lambda q: q["pending"] == 0)
        assert (after["failed"], after["failures"]) == (0, [])
        async with state.backends.db.engine.connect() as conn:
            left = (await conn.execute(select(JobRow.id).where(JobRow.tenant_id == settings.default_tenant))).all()
        assert left == []  # it completed, nothing parked again
        hits = await search(client, "where is the boat moored", mode="semantic")
        assert hits and hits[0]["memory"]["id"] == memory_id

    async def test_only_a_failed_job_of_the_tenant_can_be_retried(
        self, running: tuple[State, httpx.AsyncClient], settings: Settings
    ) -> None:
        state, client = running
        assert_problem(await client.post("/v1/admin/queue/987654321/retry"), 404, "not_found")
        assert_problem(await client.post("/v1/admin/queue/0/retry"), 422)
        assert_problem(await client.post("/v1/admin/queue/not-a-number/retry"), 422)
        assert_problem(await client.post(f"/v1/admin/queue/{2**63}/retry"), 422)

        other = f"{settings.default_tenant}-other"
        job_id = await park(state, other, "m-elsewhere")
        assert_problem(await client.post(f"/v1/admin/queue/{job_id}/retry"), 404, "not_found")  # not your tenant's
        queue = (await client.get("/v1/admin/queue", params={"tenant_id": other})).json()
        assert queue["failed"] == 1  # untouched

        retried = await client.post(f"/v1/admin/queue/{job_id}/retry", params={"tenant_id": other})
        assert retried.status_code == 200, retried.text
        assert (retried.json()["failed"], retried.json()["failures"]) == (0, [])
        again = await client.post(f"/v1/admin/queue/{job_id}/retry", params={"tenant_id": other})
        assert_problem(again, 404)  # pending again (or done): not a parked job any more


class TestRetryNeedsAnAdminKey:
    @pytest.fixture
    async def secure(self, settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[tuple[State, httpx.AsyncClient, str]]:
        secure_settings = secured(settings)
        await migrated(secure_settings.sql_url)
        app = app_for(secure_settings, embedder)
        assert secure_settings.admin_key is not None
        async with start(app) as client:
            yield app.state.memory, client, secure_settings.admin_key.get_secret_value()

    async def test_a_client_key_is_refused_and_an_admin_key_retries(
        self, secure: tuple[State, httpx.AsyncClient, str]
    ) -> None:
        state, client, admin_key = secure
        tenant = await new_tenant(client, admin_key)
        job_id = await park(state, tenant.id, "m-1")
        path = f"/v1/admin/queue/{job_id}/retry"
        assert_problem(await client.post(path), 401, "unauthorized")
        assert_problem(await client.post(path, headers=tenant.headers), 403)
        assert (await client.get("/v1/admin/queue", params={"tenant_id": tenant.id}, headers=bearer(admin_key))).json()[
            "failed"
        ] == 1
        retried = await client.post(path, params={"tenant_id": tenant.id}, headers=bearer(admin_key))
        assert retried.status_code == 200, retried.text
        assert retried.json()["failed"] == 0
