"""POST /v1/memories/import on both backend sets: JSON lines of memories, with precomputed vectors
(searchable at once) or without (searchable once the worker has embedded them), idempotent by id,
refusing bad lines with a 422 that names them, scoped to the caller's tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.lifespan import State
from service.settings import Settings
from tests.api.auth_fixtures import Tenant, new_tenant, secured
from tests.api.helpers import assert_problem, drained, new_session, search
from tests.conftest import app_for, migrated, start

FACTS = (
    "Ines keeps bees on the roof of her flat in Porto.",
    "The quarterly budget review moved to the second Tuesday of March.",
    "My grandfather restored a red 1962 Vespa scooter.",
)
QUERIES = ("who keeps bees on a roof", "when is the budget review", "old scooter restoration")


def ndjson(lines: Iterable[dict[str, Any] | bytes]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


async def imported(
    client: httpx.AsyncClient, lines: Iterable[dict[str, Any] | bytes], headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/x-ndjson", **(headers or {})}
    return await client.post("/v1/memories/import", content=ndjson(lines), headers=headers)


async def with_vectors(embedder: SentenceTransformerEmbedder, facts: Sequence[str], user_id: str = "u1") -> list[dict[str, Any]]:
    vectors = await embedder.embed(list(facts))
    return [
        {"id": str(uuid.uuid4()), "user_id": user_id, "content": fact, "type": "semantic", "vector": vector}
        for fact, vector in zip(facts, vectors, strict=True)
    ]


async def ids_of(client: httpx.AsyncClient, user_id: str = "u1", **headers: str) -> list[str]:
    page = await client.get("/v1/memories", params={"user_id": user_id, "limit": 1000}, headers=headers)
    assert page.status_code == 200, page.text
    return sorted(m["id"] for m in page.json()["items"])


def state_of(app: FastAPI) -> State:
    state: State = app.state.memory
    return state


class TestImportWithVectors:
    async def test_searchable_at_once_with_their_ids_and_history(
        self, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder
    ) -> None:
        lines = await with_vectors(embedder, FACTS)
        answer = await imported(client, lines)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"imported": 3, "skipped": 0, "indexed": 3, "queued": 0}
        assert await ids_of(client) == sorted(line["id"] for line in lines)
        for query, line in zip(QUERIES, lines, strict=True):  # no wait: nothing was left to the worker
            hits = await search(client, query, mode="semantic", limit=1)
            assert hits and hits[0]["memory"]["id"] == line["id"], query
        history = (await client.get(f"/v1/memories/{lines[0]['id']}/history")).json()["versions"]
        assert [v["op"] for v in history] == ["created"]

    async def test_vectors_are_normalised(self, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder) -> None:
        [line] = await with_vectors(embedder, FACTS[:1])
        line["vector"] = [x * 7.5 for x in line["vector"]]
        assert (await imported(client, [line])).json()["indexed"] == 1
        hits = await search(client, QUERIES[0], mode="semantic", limit=1)
        assert hits[0]["memory"]["id"] == line["id"]
        assert 0.3 < hits[0]["parts"]["semantic"] <= 1.0

    async def test_fields_are_kept_like_a_write(self, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder) -> None:
        session = (await new_session(client, "u1"))["id"]
        [line] = await with_vectors(embedder, FACTS[:1])
        line |= {
            "type": "episodic", "session_id": session, "importance": 0.9, "topic": "bees",
            "metadata": {"source": "crm", "n": 3}, "event_time": "2023-05-08T10:00:00Z",
        }
        assert (await imported(client, [line])).status_code == 200
        memory = (await client.get(f"/v1/memories/{line['id']}")).json()
        assert memory["session_id"] == session and memory["topic"] == "bees" and memory["importance"] == 0.9
        assert memory["metadata"] == {"source": "crm", "n": 3} and memory["event_time"].startswith("2023-05-08T10:00")
        assert memory["keywords"]  # extracted, as for POST /v1/memories
        hits = await search(client, "bees", session_id=session, types=["episodic"], metadata={"source": "crm"})
        assert [h["memory"]["id"] for h in hits] == [line["id"]]
        user = (await client.get("/v1/users/u1")).json()
        assert user["memory_count"] == 1

    @pytest.mark.parametrize(
        "vector",
        [
            b"[" + b",".join([b"1"] + [b"0"] * 383) + b"]",  # integers
            b"[" + b",".join([b"true"] + [b"false"] * 383) + b"]",  # booleans, read as 1.0 and 0.0 (qdrant-client refuses them)
            b"[" + b",".join([b'"0.6"', b'"0.8"'] + [b"0"] * 382) + b"]",  # numeric strings
            b"[" + b",".join([b"3e-5", b"4e-5"] + [b"0"] * 382) + b"]",  # too short for the engines to normalise
        ],
    )
    async def test_numbers_are_read_as_for_any_line(self, client: httpx.AsyncClient, vector: bytes) -> None:
        line = json.dumps({"user_id": "u1", "content": FACTS[0]}).encode()[:-1] + b', "vector": ' + vector + b"}"
        answer = await imported(client, [line])
        assert answer.json() == {"imported": 1, "skipped": 0, "indexed": 1, "queued": 0}, answer.text

    async def test_a_failed_vector_write_leaves_them_to_the_worker(
        self, app: FastAPI, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder
    ) -> None:
        vectors = state_of(app).backends.vectors
        real = vectors.upsert
        calls = 0

        async def fail_once(points: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("vector engine down")
            await real(points)

        vectors.upsert = fail_once  # type: ignore[method-assign]
        try:
            lines = await with_vectors(embedder, FACTS)
            answer = await imported(client, lines)
            assert answer.json() == {"imported": 3, "skipped": 0, "indexed": 0, "queued": 3}  # SQL kept them
            await drained(client)
        finally:
            vectors.upsert = real  # type: ignore[method-assign]
        hits = await search(client, QUERIES[2], mode="semantic", limit=1)
        assert hits[0]["memory"]["id"] == lines[2]["id"]


class TestImportWithoutVectors:
    async def test_searchable_once_the_queue_drains(self, client: httpx.AsyncClient) -> None:
        lines = [{"user_id": "u1", "content": fact} for fact in FACTS]
        answer = await imported(client, lines)
        assert answer.json() == {"imported": 3, "skipped": 0, "indexed": 0, "queued": 3}
        await drained(client)
        for query, fact in zip(QUERIES, FACTS, strict=True):
            hits = await search(client, query, limit=1)
            assert hits and hits[0]["memory"]["content"] == fact, query

    async def test_mixed_lines(self, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder) -> None:
        lines = [*await with_vectors(embedder, FACTS[:2]), {"user_id": "u1", "content": FACTS[2]}]
        assert (await imported(client, lines)).json() == {"imported": 3, "skipped": 0, "indexed": 2, "queued": 1}
        await drained(client)
        assert len(await ids_of(client)) == 3


class TestIdempotence:
    async def test_a_second_import_skips_every_line(self, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder) -> None:
        lines = await with_vectors(embedder, FACTS)
        first = await imported(client, lines)
        again = await imported(client, lines)
        assert first.json()["imported"] == 3
        assert again.json()["imported"] == 0 and again.json()["skipped"] == 3
        assert again.json()["queued"] == 0
        assert await ids_of(client) == sorted(line["id"] for line in lines)
        history = (await client.get(f"/v1/memories/{lines[0]['id']}/history")).json()["versions"]
        assert len(history) == 1

    async def test_running_it_again_completes_an_import_cut_short(
        self, app: FastAPI, client: httpx.AsyncClient, embedder: SentenceTransformerEmbedder
    ) -> None:
        lines = await with_vectors(embedder, FACTS)
        await imported(client, lines)
        # As if the process died between the commit and the vector write: rows without points.
        await state_of(app).backends.vectors.delete([line["id"] for line in lines])
        assert await search(client, QUERIES[0], mode="semantic") == []
        again = await imported(client, lines)
        assert again.json() == {"imported": 0, "skipped": 3, "indexed": 3, "queued": 0}
        hits = await search(client, QUERIES[0], mode="semantic", limit=1)
        assert hits[0]["memory"]["id"] == lines[0]["id"]
        changed = [lines[1] | {"content": "Something else entirely."}]  # a line that no longer matches its row
        assert (await imported(client, changed)).json()["indexed"] == 0

    async def test_a_repeated_id_keeps_the_first_line(self, client: httpx.AsyncClient) -> None:
        same = str(uuid.uuid4())
        answer = await imported(client, [{"id": same, "user_id": "u1", "content": c} for c in FACTS[:2]])
        assert answer.json()["imported"] == 1 and answer.json()["skipped"] == 1
        assert (await client.get(f"/v1/memories/{same}")).json()["content"] == FACTS[0]

    async def test_ids_are_kept_canonical(self, client: httpx.AsyncClient) -> None:
        raw = uuid.uuid4()
        await imported(client, [{"id": raw.hex.upper(), "user_id": "u1", "content": FACTS[0]}])
        assert await ids_of(client) == [str(raw)]


class TestBadLines:
    async def test_a_bad_line_is_422_naming_it_and_the_lines_before_stay(self, client: httpx.AsyncClient) -> None:
        good = [{"user_id": "u1", "content": fact} for fact in FACTS[:2]]
        problem = assert_problem(await imported(client, [*good, b"not json", good[0]]), 422, "invalid_input")
        assert problem["detail"].startswith("line 3:")
        assert len(await ids_of(client)) == 2
        await drained(client)

    @pytest.mark.parametrize(
        ("vector", "says"),
        [
            ([0.1] * 10, "vector has 10 numbers; the embedding model's dimension is 384"),
            ([0.0] * 384, "all zeros"),
            (b"[" + b",".join([b"0.1"] * 383 + [b"NaN"]) + b"]", "vector.383"),
            (b"[" + b",".join([b"0.1"] * 383 + [b"1e309"]) + b"]", "finite"),
            (b"[" + b",".join([b"0.1"] * 383 + [b"Infinity"]) + b"]", "vector.383"),
            (b'["a"]', "vector.0"),
            (b"[]", "vector"),
        ],
    )
    async def test_a_bad_vector(self, client: httpx.AsyncClient, vector: Any, says: str) -> None:
        head = {"user_id": "u1", "content": FACTS[0]}
        line = json.dumps(head | {"vector": vector}).encode() if isinstance(vector, list) else (
            json.dumps(head).encode()[:-1] + b', "vector": ' + vector + b"}"
        )
        problem = assert_problem(await imported(client, [{"user_id": "u1", "content": FACTS[1]}, line]), 422)
        assert problem["detail"].startswith("line 2:") and says in problem["detail"], problem["detail"]
        assert len(await ids_of(client)) == 1

    @pytest.mark.parametrize(
        ("line", "says"),
        [
            ({"user_id": "u1", "content": "   "}, "content"),
            ({"user_id": "u1"}, "content"),
            ({"user_id": "u1", "content": "x", "id": "not-a-uuid"}, "id"),
            ({"user_id": "u1", "content": "x", "colour": "red"}, "colour"),
            ({"user_id": "u1", "content": "x", "importance": 2}, "importance"),
            ({"user_id": "u1", "content": "x", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
            ({"user_id": "u1", "content": "x", "session_id": "nowhere"}, "session 'nowhere' does not exist"),
            ([1, 2], "line"),
        ],
    )
    async def test_a_bad_memory(self, client: httpx.AsyncClient, line: Any, says: str) -> None:
        body = ndjson([{"user_id": "u1", "content": FACTS[0]}]) + b"\n" + json.dumps(line).encode() + b"\n"
        problem = assert_problem(
            await client.post("/v1/memories/import", content=body, headers={"Content-Type": "application/x-ndjson"}), 422
        )
        assert problem["detail"].startswith("line 3:") and says in problem["detail"], problem["detail"]
        assert len(await ids_of(client)) == 1

    async def test_content_over_the_limit(self, client: httpx.AsyncClient, settings: Settings) -> None:
        line = {"user_id": "u1", "content": "x" * (settings.max_content_chars + 1)}
        problem = assert_problem(await imported(client, [line]), 422, "limit_exceeded")
        assert problem["detail"].startswith("line 1:")

    async def test_an_empty_body_imports_nothing(self, client: httpx.AsyncClient) -> None:
        answer = await imported(client, [])
        assert answer.json() == {"imported": 0, "skipped": 0, "indexed": 0, "queued": 0}


class TestStreaming:
    async def test_many_lines_over_several_batches_in_small_chunks(self, client: httpx.AsyncClient) -> None:
        count = 2 * 2000 + 7  # BulkLimits.batch

        async def body() -> AsyncIterator[bytes]:
            for i in range(count):  # one line in two chunks, split mid-line
                line = {"user_id": f"u{i % 3}", "content": f"Fact number {i} about bees.", "vector": [1.0] * 383 + [i + 1.0]}
                raw = json.dumps(line).encode()
                yield raw[:10]
                yield raw[10:] + b"\n"

        answer = await client.post("/v1/memories/import", content=body(), headers={"Content-Type": "application/x-ndjson"})
        assert answer.json() == {"imported": count, "skipped": 0, "indexed": count, "queued": 0}
        users = [(await client.get(f"/v1/users/u{i}")).json()["memory_count"] for i in range(3)]
        assert sum(users) == count


@pytest.fixture
async def tenants(settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[tuple[httpx.AsyncClient, Tenant, Tenant]]:
    secure = secured(settings)
    assert secure.admin_key is not None
    await migrated(secure.sql_url)
    async with start(app_for(secure, embedder)) as client:
        admin = secure.admin_key.get_secret_value()
        yield client, await new_tenant(client, admin), await new_tenant(client, admin)


class TestTenants:
    async def test_an_import_is_the_callers_tenants(
        self, tenants: tuple[httpx.AsyncClient, Tenant, Tenant], embedder: SentenceTransformerEmbedder
    ) -> None:
        client, a, b = tenants
        lines = await with_vectors(embedder, FACTS)
        assert (await imported(client, lines, headers=a.headers)).json()["imported"] == 3
        # B sends A's ids with its own text: the ids are taken, nothing of A's changes or shows.
        hijack = [line | {"content": "B was here."} for line in lines]
        assert (await imported(client, hijack, headers=b.headers)).json() == {
            "imported": 0, "skipped": 3, "indexed": 0, "queued": 0
        }
        assert await ids_of(client, **b.headers) == []
        assert (await client.get(f"/v1/memories/{lines[0]['id']}", headers=b.headers)).status_code == 404
        found = await client.post("/v1/memories/search", json={"query": QUERIES[0], "user_id": "u1"}, headers=b.headers)
        assert found.json()["items"] == []
        mine = await client.get(f"/v1/memories/{lines[0]['id']}", headers=a.headers)
        assert mine.json()["content"] == FACTS[0]
        hits = await client.post("/v1/memories/search", json={"query": QUERIES[0], "user_id": "u1", "mode": "semantic"}, headers=a.headers)
        assert hits.json()["items"][0]["memory"]["content"] == FACTS[0]

    async def test_another_tenants_session_does_not_exist(self, tenants: tuple[httpx.AsyncClient, Tenant, Tenant]) -> None:
        client, a, b = tenants
        theirs = (await client.post("/v1/sessions", json={"user_id": "u1"}, headers=a.headers)).json()["id"]
        line = {"user_id": "u1", "content": FACTS[0], "session_id": theirs}
        problem = assert_problem(await imported(client, [line], headers=b.headers), 422)
        assert "does not exist" in problem["detail"]
        assert await ids_of(client, **a.headers) == []

    async def test_a_key_is_needed(self, tenants: tuple[httpx.AsyncClient, Tenant, Tenant]) -> None:
        client, _, _ = tenants
        assert_problem(await imported(client, [{"user_id": "u1", "content": FACTS[0]}]), 401)
