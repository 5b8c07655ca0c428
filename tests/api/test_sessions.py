"""/v1/sessions on both backend sets."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, new_session, post_messages


class TestCreateSession:
    async def test_generates_a_uuid_when_no_id_is_given(self, client: httpx.AsyncClient) -> None:
        body = await new_session(client, metadata={"channel": "web"})
        assert len(body["id"]) == 36 and body["metadata"] == {"channel": "web"} and body["agent_id"] is None

    async def test_keeps_a_client_supplied_id(self, client: httpx.AsyncClient) -> None:
        body = await new_session(client, id="chat-42", agent_id="helper")
        assert (body["id"], body["agent_id"]) == ("chat-42", "helper")

    async def test_an_id_in_use_is_a_conflict(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="dup")
        assert_problem(await client.post("/v1/sessions", json={"user_id": "u2", "id": "dup"}), 409, "conflict")

    async def test_rejects_bad_ids_and_unknown_fields(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/v1/sessions", json={"user_id": "a b"}), 422, "validation_failed")
        assert_problem(await client.post("/v1/sessions", json={"user_id": "u", "bogus": 1}), 422)
        assert_problem(await client.post("/v1/sessions", json={}), 422)


class TestListSessions:
    async def test_pages_newest_first_and_filters_by_user(self, client: httpx.AsyncClient) -> None:
        for i in range(5):
            await new_session(client, user_id="ann" if i % 2 == 0 else "bob", id=f"s{i}")
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/sessions", params=params)).json()
            seen += [s["id"] for s in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert seen == ["s4", "s3", "s2", "s1", "s0"]
        page = (await client.get("/v1/sessions", params={"user_id": "bob"})).json()
        assert [s["id"] for s in page["items"]] == ["s3", "s1"]

    async def test_a_forged_cursor_is_a_clear_error(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/sessions", params={"cursor": "garbage!"}), 422, "validation_failed")
        assert_problem(await client.get("/v1/sessions", params={"cursor": "Z2FyYmFnZQ"}), 422, "invalid_input")


class TestGetUpdateDeleteSession:
    async def test_get_and_patch(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        patched = await client.patch("/v1/sessions/s1", json={"metadata": {"topic": "travel"}, "agent_id": "a1"})
        assert patched.status_code == 200
        got = (await client.get("/v1/sessions/s1")).json()
        assert got["metadata"] == {"topic": "travel"} and got["agent_id"] == "a1" and got["user_id"] == "u1"

    async def test_unknown_session_is_404_everywhere(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/sessions/nope"), 404, "not_found")
        assert_problem(await client.patch("/v1/sessions/nope", json={"agent_id": "x"}), 404)
        assert_problem(await client.delete("/v1/sessions/nope"), 404)

    async def test_delete_removes_messages_and_buffer(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1")
        await post_messages(client, "s1", "hello", "hi there")
        assert (await client.get("/v1/sessions/s1/buffer")).status_code == 200
        response = await client.delete("/v1/sessions/s1")
        assert response.status_code == 204 and response.content == b""
        assert_problem(await client.get("/v1/sessions/s1/buffer"), 404)
        assert_problem(await client.get("/v1/sessions/s1/messages"), 404)
        await new_session(client, id="s1")  # the id is free again, with no old messages
        assert (await client.get("/v1/sessions/s1/messages")).json()["items"] == []
