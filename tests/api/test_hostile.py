"""Hostile input, on both backend sets: every item answers a 4xx problem, never a 500, and
nothing already stored is lost. Raw bytes carry what JSON proper cannot (NaN, lone surrogates)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.schemas.memories import KEYWORD_MAX_CHARS, MAX_KEYWORDS, MAX_QUERY_CHARS
from service.schemas.validators import METADATA_MAX_DEPTH, METADATA_MAX_KEYS
from service.settings import Settings
from tests.api.helpers import assert_problem, drained, new_session, post_messages, search

JSON = {"content-type": "application/json"}
MESSAGES = "/v1/sessions/s1/messages"
GOOD = {"user_id": "u1", "content": "Ann keeps bees on the roof of her house."}


def raw(text: str) -> bytes:
    """A body as written (NaN, Infinity and \\ud800 escapes are passed through to the server)."""
    return text.encode()


def message_body(content: str = '"hi"', metadata: str = "{}", **more: str) -> bytes:
    extra = "".join(f', "{k}": {v}' for k, v in more.items())
    return raw(f'{{"messages": [{{"role": "user", "content": {content}, "metadata": {metadata}{extra}}}]}}')


def memory_body(**fields: str) -> bytes:
    """A memory body from JSON fragments: ``memory_body(importance="NaN")``."""
    base = {"user_id": '"u1"', "content": '"Ann plays the oboe."', **fields}
    return raw("{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}")


def search_body(**fields: str) -> bytes:
    base = {"query": '"bees"', "user_id": '"u1"', **fields}
    return raw("{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}")


def problem(response: httpx.Response, status: int = 422, *words: str) -> dict[str, Any]:
    """A problem of ``status`` whose detail names each of ``words`` (the field, the limit)."""
    body = assert_problem(response, status)
    json.loads(response.content)  # strictly valid JSON: no NaN, no lone surrogate
    for word in words:
        assert word in (body["detail"] or ""), (word, body["detail"])
    return body


@dataclass
class Stored:
    """A session with one message and one indexed memory, stored before the hostile requests."""

    message: dict[str, Any]
    memory: dict[str, Any]
    listed: list[dict[str, Any]]

    async def intact(self, client: httpx.AsyncClient) -> None:
        history = (await client.get(MESSAGES)).json()["items"]
        assert history == [self.message], history
        got = (await client.get(f"/v1/memories/{self.memory['id']}")).json()
        assert got == self.memory
        now_listed = (await client.get("/v1/memories")).json()["items"]
        assert all(m in now_listed for m in self.listed), "a stored memory was lost or changed"
        await drained(client)
        hits = await search(client, "who keeps bees on the roof")
        assert hits and hits[0]["memory"]["id"] == self.memory["id"]


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> Stored:
    await new_session(client, id="s1")
    [message] = await post_messages(client, "s1", "Bees are calm in the morning.")
    response = await client.post("/v1/memories", json=GOOD)
    assert response.status_code == 201, response.text
    memory = response.json()["items"][0]["memory"]
    await drained(client)
    listed = (await client.get("/v1/memories")).json()["items"]
    return Stored(message, memory, listed)


class TestNonFiniteNumbers:
    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309"])
    async def test_anywhere_in_metadata_is_422(self, client: httpx.AsyncClient, stored: Stored, number: str) -> None:
        problem(await client.post(MESSAGES, content=message_body(metadata=f'{{"score": {number}}}'), headers=JSON), 422, "finite")
        deep = f'{{"a": {{"b": [1, {{"c": {number}}}]}}}}'
        problem(await client.post("/v1/memories", content=memory_body(metadata=deep), headers=JSON), 422, "a.b.1.c")
        problem(await client.post("/v1/sessions", content=raw(f'{{"user_id": "u1", "metadata": {{"x": {number}}}}}'), headers=JSON))
        await stored.intact(client)

    async def test_importance_and_weights(self, client: httpx.AsyncClient, stored: Stored) -> None:
        for value in ("NaN", "Infinity", "1e309"):
            problem(await client.post("/v1/memories", content=memory_body(importance=value), headers=JSON), 422, "importance")
            patched = await client.patch(f"/v1/memories/{stored.memory['id']}", content=raw(f'{{"importance": {value}}}'), headers=JSON)
            problem(patched, 422, "importance")
            weights = f'{{"semantic": {value}}}'
            problem(await client.post("/v1/memories/search", content=search_body(weights=weights), headers=JSON), 422, "weights.semantic")
            problem(await client.post("/v1/memories/search", content=search_body(min_score=value), headers=JSON), 422, "min_score")
        await stored.intact(client)

    async def test_the_error_body_is_valid_json_even_when_the_input_was_nan(self, client: httpx.AsyncClient) -> None:
        body = problem(await client.post("/v1/memories", content=memory_body(importance="NaN"), headers=JSON))
        [error] = [e for e in body["errors"] if e["loc"][-1] == "importance" and e["type"] == "finite_number"]
        assert error["input"] == "nan"
        body = problem(await client.post(MESSAGES, content=message_body(content='"\\ud800"'), headers=JSON))
        assert body["errors"][0]["input"] == "\\ud800"

    async def test_a_batch_with_one_nan_message_stores_nothing(self, client: httpx.AsyncClient, stored: Stored) -> None:
        batch = raw(
            '{"messages": [{"role": "user", "content": "a good one"},'
            ' {"role": "user", "content": "a bad one", "metadata": {"score": NaN}}]}'
        )
        problem(await client.post(MESSAGES, content=batch, headers=JSON), 422, "messages.1.metadata")
        memories = raw(f'{{"memories": [{json.dumps({**GOOD, "content": "good"})}, {{"user_id": "u1", "content": "bad", "importance": NaN}}]}}')
        problem(await client.post("/v1/memories", content=memories, headers=JSON), 422, "importance")
        await stored.intact(client)


class TestUnstorableStrings:
    @pytest.mark.parametrize("bad", [r'"\ud800"', r'"x\udfffy"', r'"nul\u0000byte"'])
    async def test_in_content_metadata_and_names(self, client: httpx.AsyncClient, stored: Stored, bad: str) -> None:
        problem(await client.post(MESSAGES, content=message_body(content=bad), headers=JSON), 422, "content")
        problem(await client.post(MESSAGES, content=message_body(metadata=f'{{"k": {bad}}}'), headers=JSON), 422, "metadata")
        problem(await client.post(MESSAGES, content=message_body(metadata=f'{{{bad}: 1}}'), headers=JSON), 422, "key")
        problem(await client.post(MESSAGES, content=message_body(name=bad), headers=JSON), 422, "name")
        problem(await client.post("/v1/memories", content=memory_body(content=bad), headers=JSON), 422, "content")
        problem(await client.post("/v1/memories", content=memory_body(keywords=f"[{bad}]"), headers=JSON), 422, "keywords")
        problem(await client.post("/v1/memories/search", content=search_body(query=bad), headers=JSON), 422, "query")
        problem(await client.post("/v1/sessions/s1/context", content=raw(f'{{"max_tokens": 100, "query": {bad}}}'), headers=JSON), 422, "query")
        args = raw(f'{{"arguments": {{"query": {bad}}}}}')
        assert_problem(await client.post("/v1/sessions/s1/tools/search_memory", content=args, headers=JSON), 422)
        await stored.intact(client)

    async def test_in_path_and_query_parameters(self, client: httpx.AsyncClient, stored: Stored) -> None:
        assert_problem(await client.get("/v1/sessions/bad%00id"), 422)
        assert_problem(await client.get("/v1/memories/bad%00id"), 422)
        assert_problem(await client.get("/v1/memories", params={"topic": "a\x00b"}), 422)
        await stored.intact(client)


class TestSearchFilters:
    @pytest.mark.parametrize("key", ["", "has space", 'quo"te', "dotted.key", "x" * 65])
    async def test_bad_metadata_keys_are_422(self, client: httpx.AsyncClient, stored: Stored, key: str) -> None:
        body = {"query": "bees", "user_id": "u1", "metadata": {key: "v"}}
        problem(await client.post("/v1/memories/search", json=body), 422, "metadata")
        await stored.intact(client)

    async def test_a_value_beyond_int64_is_422(self, client: httpx.AsyncClient, stored: Stored) -> None:
        body = search_body(metadata='{"n": 12345678901234567890}')
        problem(await client.post("/v1/memories/search", content=body, headers=JSON), 422, "metadata")
        problem(await client.post(MESSAGES, content=message_body(metadata='{"n": 12345678901234567890}'), headers=JSON), 422, "64 bits")
        ok = await client.post("/v1/memories/search", json={"query": "bees", "user_id": "u1", "metadata": {"n": 2**63 - 1, "ok": True}})
        assert ok.status_code == 200 and ok.json()["items"] == []
        await stored.intact(client)


class TestDates:
    OVERFLOWS = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]

    @pytest.mark.parametrize("when", OVERFLOWS)
    async def test_overflowing_dates_are_422(self, client: httpx.AsyncClient, stored: Stored, when: str) -> None:
        quoted = json.dumps(when)
        problem(await client.post("/v1/memories", content=memory_body(event_time=quoted), headers=JSON), 422, "event_time", "range")
        problem(await client.post("/v1/memories", content=memory_body(expires_at=quoted), headers=JSON), 422, "expires_at")
        problem(await client.post(MESSAGES, content=message_body(created_at=quoted), headers=JSON), 422, "created_at", "range")
        for name in ("after", "before"):
            problem(await client.post("/v1/memories/search", content=search_body(**{name: quoted}), headers=JSON), 422, name)
            problem(await client.get("/v1/memories", params={name: when}), 422, name)
            problem(await client.get(MESSAGES, params={name: when}), 422, name)
        patched = await client.patch(f"/v1/memories/{stored.memory['id']}", json={"event_time": when})
        problem(patched, 422, "event_time")
        await stored.intact(client)

    @pytest.mark.parametrize("number", ["-63062", "1700000000", "1.5", "true"])
    async def test_a_number_where_a_date_is_expected_is_422(self, client: httpx.AsyncClient, stored: Stored, number: str) -> None:
        problem(await client.post("/v1/memories", content=memory_body(event_time=number), headers=JSON), 422, "event_time", "ISO-8601")
        problem(await client.post(MESSAGES, content=message_body(created_at=number), headers=JSON), 422, "created_at", "ISO-8601")
        problem(await client.post("/v1/memories/search", content=search_body(after=number), headers=JSON), 422, "after")
        problem(await client.get("/v1/memories", params={"before": number}), 422, "before", "ISO-8601")
        problem(await client.get(MESSAGES, params={"after": number}), 422, "after", "ISO-8601")
        await stored.intact(client)

    async def test_after_later_than_before_is_422(self, client: httpx.AsyncClient, stored: Stored) -> None:
        window = {"after": "2024-02-01T00:00:00Z", "before": "2024-01-01T00:00:00Z"}
        problem(await client.post("/v1/memories/search", json={"query": "bees", "user_id": "u1", **window}), 422, "after")
        problem(await client.get("/v1/memories", params=window), 422, "after")
        problem(await client.get(MESSAGES, params=window), 422, "after")
        args = {"arguments": {"query": "bees", **window}}
        assert_problem(await client.post("/v1/sessions/s1/tools/search_memory", json=args), 422)
        await stored.intact(client)

    async def test_an_expiry_in_the_past_is_422(self, client: httpx.AsyncClient, stored: Stored) -> None:
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        problem(await client.post("/v1/memories", json={**GOOD, "content": "gone at once", "expires_at": past}), 422, "expires_at", "future")
        await stored.intact(client)


class TestReferencesAndShapes:
    async def test_a_memory_of_an_unknown_session_is_422(self, client: httpx.AsyncClient, stored: Stored) -> None:
        body = problem(await client.post("/v1/memories", json={**GOOD, "content": "orphan", "session_id": "nope"}), 422, "session_id", "nope")
        assert body["code"] == "invalid_input"
        batch = {"memories": [{**GOOD, "content": "fine", "session_id": "s1"}, {**GOOD, "content": "orphan", "session_id": "nope"}]}
        problem(await client.post("/v1/memories", json=batch), 422, "session_id")
        await stored.intact(client)

    @pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", "ftp://x.org/a", "http://"])
    async def test_media_url_must_be_http(self, client: httpx.AsyncClient, stored: Stored, url: str) -> None:
        problem(await client.post("/v1/memories", json={**GOOD, "content": "a picture", "media_url": url}), 422, "media_url")
        patched = await client.patch(f"/v1/memories/{stored.memory['id']}", json={"media_url": url})
        problem(patched, 422, "media_url")
        await stored.intact(client)

    async def test_keywords_are_capped(self, client: httpx.AsyncClient, stored: Stored) -> None:
        long_one = {**GOOD, "content": "long keyword", "keywords": ["k" * (KEYWORD_MAX_CHARS + 1)]}
        problem(await client.post("/v1/memories", json=long_one), 422, "keywords.0", str(KEYWORD_MAX_CHARS))
        huge = {**GOOD, "content": "huge keyword", "keywords": ["k" * 100_000]}
        problem(await client.post("/v1/memories", json=huge), 422, "keywords")
        many = {**GOOD, "content": "many keywords", "keywords": [f"k{i}" for i in range(MAX_KEYWORDS + 1)]}
        problem(await client.post("/v1/memories", json=many), 422, "keywords", str(MAX_KEYWORDS))
        await stored.intact(client)

    @pytest.mark.parametrize("query", ["", "   ", "\n\t"])
    async def test_a_blank_query_is_422(self, client: httpx.AsyncClient, stored: Stored, query: str) -> None:
        problem(await client.post("/v1/memories/search", json={"query": query, "user_id": "u1"}), 422, "query")
        problem(await client.post("/v1/sessions/s1/context", json={"max_tokens": 100, "query": query}), 422, "query")
        await stored.intact(client)

    async def test_a_cursor_is_bound_to_its_listing(self, client: httpx.AsyncClient, stored: Stored) -> None:
        await new_session(client, id="s2")
        await post_messages(client, "s2", "one", "two", "three")
        page = (await client.get("/v1/sessions/s2/messages", params={"limit": 1})).json()
        cursor = page["next_cursor"]
        assert cursor and (await client.get("/v1/sessions/s2/messages", params={"limit": 1, "cursor": cursor})).status_code == 200
        problem(await client.get(MESSAGES, params={"cursor": cursor}), 422, "another listing")
        problem(await client.get("/v1/sessions/s2/messages", params={"cursor": cursor, "order": "desc"}), 422, "another listing")
        problem(await client.get("/v1/memories", params={"cursor": cursor}), 422, "another listing")
        problem(await client.get("/v1/sessions", params={"cursor": cursor}), 422, "another listing")
        for garbage in ("not a cursor!", "x" * 513, "bm90LWpzb24"):
            problem(await client.get(MESSAGES, params={"cursor": garbage}), 422, "cursor")
        await stored.intact(client)


class TestDeclaredLimits:
    async def test_metadata_depth_and_key_count(self, client: httpx.AsyncClient, stored: Stored) -> None:
        deep: dict[str, Any] = {"leaf": 1}
        for _ in range(METADATA_MAX_DEPTH):
            deep = {"d": deep}
        problem(await client.post("/v1/memories", json={**GOOD, "content": "deep", "metadata": deep}), 422, str(METADATA_MAX_DEPTH))
        wide = {f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)}
        problem(await client.post(MESSAGES, json={"messages": [{"role": "user", "content": "x", "metadata": wide}]}), 422, str(METADATA_MAX_KEYS))
        nested_wide = {"inner": wide}
        problem(await client.patch("/v1/sessions/s1", json={"metadata": nested_wide}), 422, str(METADATA_MAX_KEYS))
        await stored.intact(client)
        fits = {"d": {"d": {"d": {"d": 1}}}} | {f"k{i}": i for i in range(METADATA_MAX_KEYS - 1)}
        assert (await client.post("/v1/memories", json={**GOOD, "content": "fits", "metadata": fits})).status_code == 201

    async def test_sizes_counts_and_pages(self, client: httpx.AsyncClient, stored: Stored, settings: Settings) -> None:
        huge = json.dumps({"messages": [{"role": "user", "content": "x" * settings.max_request_bytes}]})
        problem(await client.post(MESSAGES, content=huge, headers=JSON), 413, str(settings.max_request_bytes))
        many = {"messages": [{"role": "user", "content": "x"}] * (settings.max_batch_items + 1)}
        problem(await client.post(MESSAGES, json=many), 422, str(settings.max_batch_items))
        problem(await client.post(MESSAGES, json={"messages": []}), 422, "messages")
        for blank in ("", " ", "\n"):
            problem(await client.post(MESSAGES, json={"messages": [{"role": "user", "content": blank}]}), 422, "content")
        problem(await client.get(MESSAGES, params={"limit": 1001}), 422, "limit", "1000")
        problem(await client.get("/v1/sessions/s1/buffer", params={"last_n": settings.buffer_max_messages + 1}), 422, "last_n")
        problem(await client.get("/v1/sessions/s1/buffer", params={"last_n": 0}), 422, "last_n")
        problem(await client.post("/v1/sessions/s1/context", json={"max_tokens": 200_001}), 422, "max_tokens", "200000")
        long_query = {"query": "q" * (MAX_QUERY_CHARS + 1), "user_id": "u1"}
        problem(await client.post("/v1/memories/search", json=long_query), 422, "query", str(MAX_QUERY_CHARS))
        await stored.intact(client)

    def test_every_limit_is_in_the_schema(self, app: Any) -> None:
        spec = app.openapi()
        schemas = spec["components"]["schemas"]
        message = schemas["MessageIn"]["properties"]
        assert message["content"]["minLength"] == 1 and message["content"]["pattern"] == r"\S"
        assert message["metadata"]["maxProperties"] == METADATA_MAX_KEYS
        assert f"{METADATA_MAX_DEPTH} levels" in message["metadata"]["description"]
        assert schemas["MessageBatch"]["properties"]["messages"]["minItems"] == 1
        assert "MEMORY_MAX_BATCH_ITEMS" in schemas["MessageBatch"]["properties"]["messages"]["description"]
        memory = schemas["MemoryCreate"]["properties"]
        keywords = memory["keywords"]["anyOf"][0]
        assert keywords["maxItems"] == MAX_KEYWORDS and keywords["items"]["maxLength"] == KEYWORD_MAX_CHARS
        assert memory["media_url"]["anyOf"][0]["pattern"].startswith("^[Hh][Tt][Tt][Pp]")
        search_props = schemas["SearchRequest"]["properties"]
        assert search_props["query"]["maxLength"] == MAX_QUERY_CHARS and search_props["query"]["pattern"] == r"\S"
        assert search_props["metadata"]["anyOf"][0]["propertyNames"]["pattern"] == r"^[A-Za-z0-9_-]+$"
        assert schemas["ContextRequest"]["properties"]["max_tokens"]["maximum"] == 200_000
        params = {
            (path, p["name"]): p["schema"]
            for path, item in spec["paths"].items()
            for op in item.values()
            for p in op.get("parameters", [])
        }
        buffer = "/v1/sessions/{session_id}/buffer"
        assert params[(buffer, "last_n")]["anyOf"][0]["minimum"] == 1
        assert "maximum" in params[(buffer, "max_tokens")]["anyOf"][0]
        cursor = params[("/v1/sessions/{session_id}/messages", "cursor")]["anyOf"][0]
        assert cursor["maxLength"] == 512 and cursor["pattern"]
        assert params[("/v1/memories", "limit")]["maximum"] == 1000
        assert params[("/v1/sessions/{session_id}", "session_id")]["pattern"]


class TestMethodNotAllowed:
    async def test_allow_lists_every_method_of_the_path(self, client: httpx.AsyncClient, stored: Stored) -> None:
        response = await client.put(f"/v1/memories/{stored.memory['id']}", json={})
        assert_problem(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}
        response = await client.delete("/v1/sessions")
        assert_problem(response, 405)
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
        response = await client.put("/v1/sessions/s1/messages", json={})
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
        response = await client.put("/v1/memories/search", json={})
        assert response.headers["allow"] == "POST"
        await stored.intact(client)
