"""Users and their profiles, on both backend sets with the real model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from service.domain.profiles import MAX_FIELDS, MAX_FIELDS_BYTES
from tests.api.helpers import add_memories, assert_problem, drained, new_session, post_messages
from tests.api.test_context import TOKENS, context


async def patch_fields(client: httpx.AsyncClient, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    response = await client.patch(f"/v1/users/{user_id}/profile", json={"fields": fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def profile(client: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{user_id}/profile")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def memory(content: str, user_id: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"user_id": user_id, "content": content, **extra}


KNITTING = ("Knitted a red scarf for winter.", "Bought merino wool for a sweater.", "Learned a new cable stitch.")
SAILING = ("Sailed across the bay on Sunday.", "Booked a dinghy course at the marina.")


class TestListUsers:
    async def test_pages_in_id_order_over_sessions_memories_and_profiles(self, client: httpx.AsyncClient) -> None:
        for user in ("carol", "alice", "bob"):
            await new_session(client, user_id=user)
        await new_session(client, user_id="alice")
        await add_memories(client, memory("Dave keeps bees on the roof.", "dave"))
        await patch_fields(client, "erin", {"name": "Erin"})
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await client.get("/v1/users", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [u["id"] for u in seen] == ["alice", "bob", "carol", "dave", "erin"]
        assert seen[0]["session_count"] == 2 and seen[3]["memory_count"] == 1 and seen[4]["session_count"] == 0

    async def test_an_empty_tenant_lists_nobody(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/v1/users")).json() == {"items": [], "next_cursor": None}

    @pytest.mark.parametrize("params", [{"cursor": "bm9wZQ"}, {"cursor": "not a cursor"}, {"limit": 0}, {"limit": 5000}])
    async def test_bad_paging_is_a_422_problem(self, client: httpx.AsyncClient, params: dict[str, Any]) -> None:
        assert_problem(await client.get("/v1/users", params=params), 422)


class TestGetUser:
    async def test_counts_sessions_messages_and_memories(self, client: httpx.AsyncClient) -> None:
        first = await new_session(client, user_id="u1")
        second = await new_session(client, user_id="u1")
        await post_messages(client, first["id"], "The weather was grey.", "Rain again today.", "The tram was late.")
        posted = await post_messages(client, second["id"], "The museum opens at nine.")
        await add_memories(client, memory("Ann is allergic to peanuts.", type="semantic"), memory("Ann plays the cello."))
        await drained(client)
        response = await client.get("/v1/users/u1")
        assert response.status_code == 200, response.text
        body = response.json()
        listed = (await client.get("/v1/memories", params={"user_id": "u1", "limit": 100})).json()["items"]
        assert set(body) == {"id", "session_count", "message_count", "memory_count", "document_count", "first_seen", "last_seen"}
        assert (body["id"], body["session_count"], body["message_count"], body["document_count"]) == ("u1", 2, 4, 0)
        assert body["memory_count"] == len(listed) >= 6  # every message is an episode, plus the two
        first_seen, last_seen = datetime.fromisoformat(body["first_seen"]), datetime.fromisoformat(body["last_seen"])
        assert first_seen <= datetime.fromisoformat(posted[0]["created_at"]) <= last_seen
        assert first_seen == datetime.fromisoformat(first["created_at"])

    async def test_a_deleted_memory_no_longer_counts(self, client: httpx.AsyncClient) -> None:
        made = await add_memories(client, memory("Ann plays the cello."), memory("Ann speaks Basque.", type="semantic"))
        assert (await client.delete(f"/v1/memories/{made[0]['memory']['id']}")).status_code == 204
        assert (await client.get("/v1/users/u1")).json()["memory_count"] == 1

    async def test_unknown_user_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        await new_session(client, user_id="someone")
        assert_problem(await client.get("/v1/users/nobody"), 404, "not_found")

    async def test_a_malformed_id_is_a_422_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/users/" + "x" * 129), 422)
        assert_problem(await client.get("/v1/users/bad%20id"), 422)


class TestGetProfile:
    async def test_unknown_user_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/users/nobody/profile"), 404, "not_found")

    async def test_a_user_without_a_profile_gets_empty_fields(self, client: httpx.AsyncClient) -> None:
        await new_session(client, user_id="u1")
        assert await profile(client, "u1") == {"user_id": "u1", "fields": {}, "facts": [], "topics": [], "updated_at": None}

    async def test_facts_and_topics_follow_the_memories_in_the_background(self, client: httpx.AsyncClient) -> None:
        await patch_fields(client, "u1", {"name": "Ann"})  # derived parts exist (empty) from here on
        made = await add_memories(
            client,
            memory("Ann is allergic to peanuts.", type="semantic", importance=0.9, topic="health", keywords=["peanuts"]),
            memory("Prefers to be called Annie.", type="profile", importance=0.7, topic="identity"),
            memory("Ann ran the Lisbon half marathon.", type="semantic", importance=0.2, topic="health", keywords=["running"]),
            memory("We talked about the weather in Porto.", type="episodic", importance=1.0, topic="weather"),
        )
        ids = [m["memory"]["id"] for m in made]
        await drained(client)
        body = await profile(client, "u1")
        assert body["fields"] == {"name": "Ann"}
        assert [f["id"] for f in body["facts"]] == [ids[0], ids[1], ids[2]]  # importance first; no episodes
        assert body["facts"][0] == {"id": ids[0], "content": "Ann is allergic to peanuts.", "importance": 0.9}
        assert body["topics"][0] == {"term": "health", "weight": 1.0}
        terms = {t["term"]: t["weight"] for t in body["topics"]}
        assert {"identity", "weather", "peanuts", "running"} <= set(terms) and all(0 < w <= 1 for w in terms.values())
        assert (await client.delete(f"/v1/memories/{ids[0]}")).status_code == 204
        await drained(client)
        assert [f["id"] for f in (await profile(client, "u1"))["facts"]] == [ids[1], ids[2]]

    async def test_recent_topics_weigh_more(self, client: httpx.AsyncClient) -> None:
        old, recent = "2020-01-01T00:00:00Z", datetime.now().astimezone().isoformat()
        await add_memories(
            client,
            *[memory(text, topic="knitting", event_time=old) for text in KNITTING],
            *[memory(text, topic="sailing", event_time=recent) for text in SAILING],
        )
        await drained(client)
        topics = {t["term"]: t["weight"] for t in (await profile(client, "u1"))["topics"]}
        assert topics["sailing"] == 1.0 and topics["knitting"] < 0.01


class TestUpdateProfile:
    async def test_json_merge_patch(self, client: httpx.AsyncClient) -> None:
        first = await patch_fields(client, "u1", {"name": "Ann", "prefs": {"tea": True, "coffee": False}, "langs": ["pt", "en"]})
        assert first["fields"] == {"name": "Ann", "prefs": {"tea": True, "coffee": False}, "langs": ["pt", "en"]}
        second = await patch_fields(
            client, "u1", {"name": "Annie", "prefs": {"coffee": None, "juice": "orange"}, "langs": ["de"], "city": "Lisbon"}
        )
        assert second["fields"] == {"name": "Annie", "prefs": {"tea": True, "juice": "orange"}, "langs": ["de"], "city": "Lisbon"}
        third = await patch_fields(client, "u1", {"city": None, "missing": None, "prefs": {"tea": None, "juice": None}})
        assert third["fields"] == {"name": "Annie", "prefs": {}, "langs": ["de"]}
        assert (await profile(client, "u1"))["fields"] == third["fields"]
        assert datetime.fromisoformat(third["updated_at"]) >= datetime.fromisoformat(first["updated_at"])

    async def test_a_profile_makes_the_user(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/users/newbie"), 404)
        await patch_fields(client, "newbie", {"timezone": "Europe/Lisbon"})
        user = (await client.get("/v1/users/newbie")).json()
        assert (user["id"], user["session_count"], user["memory_count"], user["message_count"]) == ("newbie", 0, 0, 0)
        assert user["first_seen"] <= user["last_seen"]
        assert [u["id"] for u in (await client.get("/v1/users")).json()["items"]] == ["newbie"]

    async def test_a_patch_answers_facts_derived_on_the_spot(self, client: httpx.AsyncClient) -> None:
        [made] = await add_memories(client, memory("Ann is allergic to peanuts.", type="semantic"))
        body = await patch_fields(client, "u1", {"name": "Ann"})
        assert [f["id"] for f in body["facts"]] == [made["memory"]["id"]]

    @pytest.mark.parametrize(
        ("body", "where"),
        [
            ({"fields": {f"k{i}": i for i in range(MAX_FIELDS + 1)}}, "fields"),
            ({"fields": {"bad key": 1}}, "bad key"),
            ({"fields": {"": 1}}, "fields"),
            ({"fields": {"bio": "x" * MAX_FIELDS_BYTES}}, "fields"),
            ({"fields": {"deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}}}, "fields"),
            ({"fields": {"n": 2**64}}, "fields"),
            ({"fields": []}, "fields"),
            ({"fields": {"name": "Ann"}, "extra": 1}, "extra"),
            ({}, "fields"),
        ],
    )
    async def test_bad_fields_are_422_problems(self, client: httpx.AsyncClient, body: dict[str, Any], where: str) -> None:
        problem = assert_problem(await client.patch("/v1/users/u1/profile", json=body), 422)
        assert where in str(problem["errors"])
        assert_problem(await client.get("/v1/users/u1"), 404)  # nothing was stored

    @pytest.mark.parametrize(
        "raw", [b'{"fields": {"name": "\\ud800"}}', b'{"fields": {"n": NaN}}', b'{"fields": {"a\\u0000": 1}}', b"{"]
    )
    async def test_unstorable_json_is_a_422_problem(self, client: httpx.AsyncClient, raw: bytes) -> None:
        response = await client.patch("/v1/users/u1/profile", content=raw, headers={"content-type": "application/json"})
        assert_problem(response, 422)

    async def test_limits_hold_after_the_merge(self, client: httpx.AsyncClient) -> None:
        await patch_fields(client, "u1", {f"a{i}": i for i in range(40)})
        too_many = await client.patch("/v1/users/u1/profile", json={"fields": {f"b{i}": i for i in range(30)}})
        assert f"at most {MAX_FIELDS} fields" in assert_problem(too_many, 422, "limit_exceeded")["detail"]
        half = "x" * (MAX_FIELDS_BYTES // 2)
        await patch_fields(client, "u1", {"bio": half})
        too_big = await client.patch("/v1/users/u1/profile", json={"fields": {"notes": half}})
        assert f"{MAX_FIELDS_BYTES} bytes" in assert_problem(too_big, 422, "limit_exceeded")["detail"]
        fields = (await profile(client, "u1"))["fields"]
        assert len(fields) == 41 and "notes" not in fields  # the refused patches changed nothing


class TestProfileInContext:
    async def test_fields_then_profile_memories_head_the_prompt(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        await patch_fields(client, "u1", {"name": "Ann", "diet": "vegetarian", "langs": ["pt", "en"]})
        await add_memories(
            client,
            memory("Prefers to be called Annie.", type="profile", importance=0.9),
            memory("Ann is allergic to peanuts.", type="semantic", importance=0.6),
        )
        await drained(client)
        body = await context(client, "s1", 800, query="What should I cook for Ann?")
        expected = '# Profile\n- diet: vegetarian\n- langs: ["pt", "en"]\n- name: Ann\n- Prefers to be called Annie.\n\n'
        assert body["prompt"].startswith(expected), body["prompt"]
        [profile_section] = [s for s in body["sections"] if s["name"] == "profile"]
        assert [i["kind"] for i in profile_section["items"]] == ["field"] * 3 + ["memory"]
        # The semantic fact is recalled by relevance into the memories section instead.
        assert "(semantic) Ann is allergic to peanuts." in body["prompt"].split("# Memories", 1)[-1]
        assert profile_section["items"][0]["id"] == "u1#field-diet"

    async def test_the_profile_keeps_to_its_budget_share(self, client: httpx.AsyncClient) -> None:
        await new_session(client, id="s1", user_id="u1")
        await patch_fields(client, "u1", {"bio": "Ann grew up by the sea and loves long walks. " * 40, "name": "Ann"})
        body = await context(client, "s1", 300, query="hello")
        [profile_section] = [s for s in body["sections"] if s["name"] == "profile"]
        assert profile_section["text"] == "# Profile\n- name: Ann"  # the long bio does not fit 10% of 300
        assert TOKENS.count(profile_section["text"]) <= 30
