"""Union bodies validate against the one shape the body has, so a bad field answers one error at
its own path, not one error per shape at locations named after pydantic's internals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem, new_session

MEMORY = {"user_id": "u1", "content": "Ann keeps bees on the roof of her house."}


def only_error(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 422, "validation_failed")
    [error] = body["errors"]
    return error


@pytest.mark.parametrize("backend", ["embedded"])
class TestMemoryWrite:
    """POST /v1/memories: one memory, or a batch when the body has a ``memories`` key."""

    async def test_one_memory_with_a_bad_field_names_that_field(self, client: httpx.AsyncClient) -> None:
        error = only_error(await client.post("/v1/memories", json={**MEMORY, "importance": 2}))
        assert (error["loc"], error["type"]) == (["body", "importance"], "less_than_equal")

    async def test_a_batch_with_a_bad_field_names_its_item_and_field(self, client: httpx.AsyncClient) -> None:
        batch = {"memories": [MEMORY, {**MEMORY, "importance": -1}]}
        error = only_error(await client.post("/v1/memories", json=batch))
        assert (error["loc"], error["type"]) == (["body", "memories", 1, "importance"], "greater_than_equal")

    async def test_a_memories_key_makes_it_a_batch(self, client: httpx.AsyncClient) -> None:
        error = only_error(await client.post("/v1/memories", json={"memories": "not a list"}))
        assert (error["loc"], error["type"]) == (["body", "memories"], "list_type")
        mixed = await client.post("/v1/memories", json={"memories": [MEMORY], "user_id": "u1"})
        assert [e["loc"] for e in assert_problem(mixed, 422)["errors"]] == [["body", "user_id"]]

    async def test_a_single_memory_missing_its_content_is_not_a_batch_error(self, client: httpx.AsyncClient) -> None:
        error = only_error(await client.post("/v1/memories", json={"user_id": "u1"}))
        assert (error["loc"], error["type"]) == (["body", "content"], "missing")

    @pytest.mark.parametrize("body", [[MEMORY], "a memory", 3])
    async def test_a_body_of_neither_shape_says_what_it_should_be(self, client: httpx.AsyncClient, body: Any) -> None:
        error = only_error(await client.post("/v1/memories", json=body))
        assert (error["loc"], error["type"]) == (["body"], "shape_invalid")
        assert "memories" in error["msg"]

    async def test_both_shapes_still_store(self, client: httpx.AsyncClient) -> None:
        one = await client.post("/v1/memories", json=MEMORY)
        batch = await client.post("/v1/memories", json={"memories": [{**MEMORY, "content": "Ann's hives are blue."}]})
        assert (one.status_code, batch.status_code) == (201, 201), (one.text, batch.text)


@pytest.mark.parametrize("backend", ["embedded"])
class TestToolCallArguments:
    """POST /v1/sessions/{id}/tools/{name}: ``arguments`` is an object or the JSON string an LLM emitted."""

    async def test_arguments_of_neither_shape_say_what_they_should_be(self, client: httpx.AsyncClient) -> None:
        session = await new_session(client)
        url = f"/v1/sessions/{session['id']}/tools/search_memory"
        error = only_error(await client.post(url, json={"arguments": 5}))
        assert (error["loc"], error["type"]) == (["body", "arguments"], "shape_invalid")

    async def test_an_object_too_deep_names_the_object_only(self, client: httpx.AsyncClient) -> None:
        session = await new_session(client)
        deep: dict[str, Any] = {"f": 1}
        for key in "edcba":
            deep = {key: deep}
        error = only_error(await client.post(f"/v1/sessions/{session['id']}/tools/search_memory", json={"arguments": deep}))
        assert (error["loc"], error["type"]) == (["body", "arguments"], "value_error")

    async def test_a_string_too_long_names_the_string_only(self, client: httpx.AsyncClient) -> None:
        session = await new_session(client)
        long = {"arguments": "x" * 100_001}
        error = only_error(await client.post(f"/v1/sessions/{session['id']}/tools/search_memory", json=long))
        assert (error["loc"], error["type"]) == (["body", "arguments"], "string_too_long")


@pytest.mark.parametrize("backend", ["embedded"])
class TestSearchMetadataFilter:
    """A metadata filter value is a string, a number or a boolean."""

    @pytest.mark.parametrize("value", [[1], {"a": 1}, None])
    async def test_a_value_of_no_scalar_shape_says_what_it_should_be(self, client: httpx.AsyncClient, value: Any) -> None:
        body = {"query": "bees", "user_id": "u1", "metadata": {"colour": value}}
        error = only_error(await client.post("/v1/memories/search", json=body))
        assert (error["loc"], error["type"]) == (["body", "metadata", "colour"], "shape_invalid")

    async def test_a_string_too_long_names_the_string_only(self, client: httpx.AsyncClient) -> None:
        body = {"query": "bees", "user_id": "u1", "metadata": {"colour": "x" * 257}}
        error = only_error(await client.post("/v1/memories/search", json=body))
        assert (error["loc"], error["type"]) == (["body", "metadata", "colour"], "string_too_long")

    async def test_every_scalar_shape_is_accepted(self, client: httpx.AsyncClient) -> None:
        body = {"query": "bees", "user_id": "u1", "metadata": {"s": "blue", "i": 3, "f": 0.5, "b": True}}
        assert (await client.post("/v1/memories/search", json=body)).status_code == 200
