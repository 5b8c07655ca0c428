"""Postgres stops: requests answer 503 problems with Retry-After (no crash, no trace in the
body), /readyz names the database; when Postgres is back, requests succeed again without
restarting the service, and everything acknowledged before the outage is still there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.api.unavailable import lost_database
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.storage.sql import migrate
from service.storage.sql.database import create_engine
from tests.api.helpers import assert_problem, new_session, post_messages
from tests.conftest import app_for, start
from tests.faults.conftest import fault_settings, quick
from tests.faults.servers import PostgresCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """One private cluster for the module (starting one takes a few seconds), migrated to head."""
    pg = PostgresCluster()
    try:
        pg.init()
        pg.start()
        migrate.upgrade(pg.url)
        yield pg
    finally:
        pg.close()


@pytest.fixture
async def client(
    cluster: PostgresCluster, data_dir: Path, embedder: SentenceTransformerEmbedder
) -> AsyncIterator[httpx.AsyncClient]:
    async with start(app_for(fault_settings(data_dir, database_url=cluster.url), embedder)) as c:
        yield c


async def answer(client: httpx.AsyncClient, method: str, path: str, **kwargs: object) -> httpx.Response:
    with quick():
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


def assert_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"].isdigit()
    assert "Connect call failed" not in body["detail"] and "sqlalchemy" not in response.text


class TestPostgresStopped:
    async def test_requests_answer_503_then_recover_without_a_restart(
        self, client: httpx.AsyncClient, cluster: PostgresCluster
    ) -> None:
        session = (await new_session(client))["id"]
        await post_messages(client, session, "kept before the outage")

        cluster.stop()
        try:
            assert_unavailable(await answer(client, "POST", "/v1/sessions", json={"user_id": "u1"}))
            assert_unavailable(await answer(client, "GET", f"/v1/sessions/{session}/messages"))
            batch = {"messages": [{"role": "user", "content": "never acknowledged"}]}
            assert_unavailable(await answer(client, "POST", f"/v1/sessions/{session}/messages", json=batch))
            ready = await answer(client, "GET", "/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "down", "buffer": "ok", "vectors": "ok"}
            assert (await answer(client, "GET", "/healthz")).status_code == 200
        finally:
            cluster.start()

        assert (await answer(client, "GET", "/readyz")).status_code == 200
        await post_messages(client, session, "written after the outage")
        listed = (await answer(client, "GET", f"/v1/sessions/{session}/messages")).json()["items"]
        assert [m["content"] for m in listed] == ["kept before the outage", "written after the outage"]
        await new_session(client)


class TestErrorMapping:
    async def test_a_dropped_connection_is_unavailable_a_bad_statement_is_not(self, cluster: PostgresCluster) -> None:
        """What asyncpg and SQLAlchemy really raise: a connection killed by the stop (mid-use)
        and a refused one are 503s; a statement the server rejects stays a bug (500)."""
        engine = create_engine(cluster.url)
        try:
            async with engine.connect() as conn:
                with pytest.raises(DBAPIError) as bad:
                    await conn.execute(text("SELECT * FROM no_such_table"))
                assert not lost_database(bad.value)
            async with engine.connect() as conn:
                cluster.stop()
                try:
                    with pytest.raises(DBAPIError) as dropped:
                        await conn.execute(text("SELECT 1"))
                    with pytest.raises(ConnectionError) as refused:
                        async with engine.connect() as again:
                            await again.execute(text("SELECT 1"))
                finally:
                    cluster.start()
            assert lost_database(dropped.value) and lost_database(refused.value)
        finally:
            await engine.dispose()
