"""Knowledge documents through the API on both backend sets: chunking, listing, search with
``sources`` and ``namespaces``, the context's documents section, deletion, limits, governance."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.settings import Settings
from tests.api.helpers import assert_problem, drained, new_session, post_messages, search
from tests.conftest import app_for, migrated, start

GUIDE = """# Espresso guide

Dial in the grinder before anything else.

## Grinding

Grind the beans fine, close to powdered sugar. A burr grinder keeps the particle size even, while
a blade grinder leaves boulders and dust that over- and under-extract in the same shot.

## Brewing

Pull each shot at nine bars for about twenty-seven seconds. A ratio of one to two, eighteen grams
in and thirty-six grams out, is the usual starting point.

## Cleaning

Backflush the group head with a blind basket every week, and descale the boiler monthly where the
water is hard.
"""
EVERY_DOCUMENT = {"sources": ["memories", "documents"]}


async def add_document(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/documents", json={"title": "Espresso guide", "content": GUIDE, **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def documents_of(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in hits if h["source"] == "document"]


class TestWrite:
    async def test_a_document_is_chunked_by_its_headings_and_kept(self, client: httpx.AsyncClient) -> None:
        made = await add_document(client, user_id="ann", metadata={"lang": "en"}, chunk_tokens=48, overlap_tokens=8)
        assert made["chunk_count"] >= 4 and made["user_id"] == "ann" and made["namespace"] is None
        assert (made["chunk_tokens"], made["overlap_tokens"]) == (48, 8)
        read = (await client.get(f"/v1/documents/{made['id']}")).json()
        assert read["content"] == GUIDE and read["metadata"] == {"lang": "en"}
        chunks: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = (await client.get(f"/v1/documents/{made['id']}/chunks", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            chunks += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [c["chunk_index"] for c in chunks] == list(range(made["chunk_count"]))
        assert all(c["tokens"] <= 48 for c in chunks)
        assert {"Espresso guide > Grinding", "Espresso guide > Brewing"} <= {c["heading"] for c in chunks}
        for chunk in chunks:  # every chunk is a span of the content
            assert GUIDE[chunk["start_char"] :].startswith(chunk["content"][:20])

    async def test_defaults_come_from_the_settings(self, client: httpx.AsyncClient) -> None:
        made = await add_document(client, namespace="handbook")
        assert (made["chunk_tokens"], made["overlap_tokens"]) == (256, 32)
        assert made["chunk_count"] == 4  # one a section: chunks never cross a heading

    async def test_listing_filters_by_owner_with_cursor_pages(self, client: httpx.AsyncClient) -> None:
        mine = [await add_document(client, user_id="ann", title=f"Note {i}") for i in range(3)]
        shared = await add_document(client, namespace="handbook")
        page = (await client.get("/v1/documents", params={"user_id": "ann", "limit": 2})).json()
        rest = (await client.get("/v1/documents", params={"user_id": "ann", "cursor": page["next_cursor"]})).json()
        assert [d["id"] for d in page["items"] + rest["items"]] == [d["id"] for d in reversed(mine)]
        assert "content" not in page["items"][0]
        handbook = (await client.get("/v1/documents", params={"namespace": "handbook"})).json()["items"]
        assert [d["id"] for d in handbook] == [shared["id"]]

    @pytest.mark.parametrize(
        "body",
        [
            {"title": "x", "content": "text"},  # no owner
            {"title": "x", "content": "text", "user_id": "ann", "namespace": "handbook"},  # two owners
            {"title": "x", "content": "   ", "user_id": "ann"},
            {"title": "", "content": "text", "user_id": "ann"},
            {"title": "x", "content": "text", "user_id": "ann", "chunk_tokens": 64, "overlap_tokens": 64},
            {"title": "x", "content": "text", "user_id": "ann", "chunk_tokens": 4},
            {"title": "x", "content": "text", "user_id": "a b"},
        ],
    )
    async def test_bad_documents_are_422(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        assert_problem(await client.post("/v1/documents", json=body), 422)
        assert (await client.get("/v1/documents")).json()["items"] == []

    async def test_unknown_documents_are_404(self, client: httpx.AsyncClient) -> None:
        for method, path in (("GET", "/v1/documents/nope"), ("GET", "/v1/documents/nope/chunks"), ("DELETE", "/v1/documents/nope")):
            assert_problem(await client.request(method, path), 404)
        assert_problem(await client.get("/v1/documents/nope/chunks", params={"cursor": "x"}), 422)


class TestSearch:
    async def test_document_hits_carry_their_document_and_chunk(self, client: httpx.AsyncClient) -> None:
        made = await add_document(client, user_id="ann", chunk_tokens=48, overlap_tokens=8)
        await drained(client)
        hits = documents_of(await search(client, "how long should an espresso shot take", user_id="ann", **EVERY_DOCUMENT))
        assert hits, "the brewing chunk is found"
        best = hits[0]
        assert best["document_id"] == made["id"] and best["title"] == "Espresso guide"
        assert "twenty-seven seconds" in best["content"] and best["heading"] == "Espresso guide > Brewing"
        chunk = (await client.get(f"/v1/documents/{made['id']}/chunks", params={"limit": 100})).json()["items"][best["chunk_index"]]
        assert chunk["id"] == best["chunk_id"] and chunk["content"] == best["content"]
        assert best["parts"]["semantic"] > 0 and best["namespace"] is None

    async def test_memories_and_documents_rank_together(self, client: httpx.AsyncClient) -> None:
        await add_document(client, user_id="ann", chunk_tokens=48, overlap_tokens=8)
        made = await client.post("/v1/memories", json={"user_id": "ann", "content": "Ann drinks her espresso without sugar."})
        assert made.status_code == 201
        await drained(client)
        hits = await search(client, "espresso", user_id="ann", limit=20, **EVERY_DOCUMENT)
        assert {h["source"] for h in hits} == {"memory", "document"}
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        only_documents = await search(client, "espresso", user_id="ann", sources=["documents"])
        assert only_documents and {h["source"] for h in only_documents} == {"document"}

    async def test_chunks_stay_out_of_memory_search_and_other_users(self, client: httpx.AsyncClient) -> None:
        await add_document(client, user_id="ann")
        await drained(client)
        assert documents_of(await search(client, "espresso grinder", user_id="ann")) == []  # default: memories
        assert await search(client, "espresso grinder", user_id="bob", **EVERY_DOCUMENT) == []
        listed = (await client.get("/v1/memories", params={"user_id": "ann"})).json()["items"]
        assert listed == []

    async def test_a_namespace_is_read_only_when_the_search_names_it(self, client: httpx.AsyncClient) -> None:
        await add_document(client, namespace="handbook")
        await drained(client)
        assert await search(client, "descale the boiler", user_id="bob", **EVERY_DOCUMENT) == []
        hits = await search(client, "descale the boiler", user_id="bob", namespaces=["handbook"], **EVERY_DOCUMENT)
        assert hits and hits[0]["namespace"] == "handbook"
        assert await search(client, "descale the boiler", user_id="bob", namespaces=["other"], **EVERY_DOCUMENT) == []

    async def test_a_deleted_document_leaves_the_index(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        made = await add_document(client, user_id="ann")
        await drained(client)
        assert documents_of(await search(client, "burr grinder", user_id="ann", **EVERY_DOCUMENT))
        assert (await client.delete(f"/v1/documents/{made['id']}")).status_code == 204
        assert_problem(await client.get(f"/v1/documents/{made['id']}"), 404)
        await drained(client)
        assert await search(client, "burr grinder", user_id="ann", **EVERY_DOCUMENT) == []
        state = app.state.memory
        assert await state.backends.vectors.count("default") == 0  # no chunk point is left behind


class TestContext:
    async def test_the_context_has_a_documents_section(self, client: httpx.AsyncClient) -> None:
        await add_document(client, namespace="handbook", chunk_tokens=48, overlap_tokens=8)
        session = (await new_session(client, "bob"))["id"]
        await post_messages(client, session, "How many bars should I pull my espresso shot at?")
        await drained(client)
        body = {"max_tokens": 600, "namespaces": ["handbook"]}
        context = (await client.post(f"/v1/sessions/{session}/context", json=body)).json()
        section = {s["name"]: s for s in context["sections"]}["documents"]
        assert section["items"] and all(i["kind"] == "document" for i in section["items"])
        assert "nine bars" in section["text"] and "# Documents\n## Espresso guide" in context["prompt"]
        assert context["tokens"] <= 600
        without = (await client.post(f"/v1/sessions/{session}/context", json={"max_tokens": 600})).json()
        assert {s["name"]: s for s in without["sections"]}["documents"]["items"] == []


class TestLimits:
    @pytest.fixture
    async def small(self, settings: Settings, embedder: SentenceTransformerEmbedder) -> AsyncIterator[httpx.AsyncClient]:
        await migrated(settings.sql_url)
        app = app_for(settings.model_copy(update={"max_document_chars": 1000}), embedder)
        async with start(app) as client:
            yield client

    async def test_a_document_over_the_limit_is_refused_naming_it(self, small: httpx.AsyncClient) -> None:
        body = assert_problem(await small.post("/v1/documents", json={"title": "x", "content": "word " * 300, "user_id": "ann"}), 422)
        assert "MEMORY_MAX_DOCUMENT_CHARS" in body["detail"] and "1000" in body["detail"]
        assert (await small.get("/v1/documents")).json()["items"] == []

    async def test_a_body_larger_than_any_document_is_413(self, small: httpx.AsyncClient) -> None:
        huge = json.dumps({"title": "x", "content": "a" * (3 * 1024 * 1024), "user_id": "ann"})
        response = await small.post("/v1/documents", content=huge, headers={"content-type": "application/json"})
        assert_problem(response, 413)


class TestGovernance:
    async def test_users_count_their_documents(self, client: httpx.AsyncClient) -> None:
        await add_document(client, user_id="cleo")
        user = (await client.get("/v1/users/cleo")).json()
        assert user["document_count"] == 1

    async def test_export_delete_import_restores_a_searchable_document(self, client: httpx.AsyncClient) -> None:
        made = await add_document(client, user_id="cleo", chunk_tokens=48, overlap_tokens=8)
        await drained(client)
        exported = (await client.get("/v1/users/cleo/export")).text
        assert '"kind":"document"' in exported.replace(" ", "")
        erased = (await client.delete("/v1/users/cleo")).json()
        assert erased["deleted"]["documents"] == 1
        await drained(client)
        assert await search(client, "burr grinder", user_id="cleo", **EVERY_DOCUMENT) == []
        for expected in (1, 0):  # a second import adds nothing
            result = await client.post("/v1/users/cleo/import", content=exported, headers={"content-type": "application/x-ndjson"})
            assert result.status_code == 200, result.text
            assert result.json()["imported"].get("document", 0) == expected, result.json()
        await drained(client)
        restored = (await client.get(f"/v1/documents/{made['id']}")).json()
        assert restored["chunk_count"] == made["chunk_count"] and restored["created_at"] == made["created_at"]
        hits = documents_of(await search(client, "burr grinder", user_id="cleo", **EVERY_DOCUMENT))
        assert hits and hits[0]["document_id"] == made["id"]


async def test_a_garbage_cursor_is_422(client: httpx.AsyncClient) -> None:
    for cursor in ("0", "AAAA", "eyJ4IjoxfQ"):
        assert_problem(await client.get("/v1/documents", params={"cursor": cursor}), 422)
