"""Governance through the API on both backend sets: erase a user from every store, export a user
as JSON lines, import the export back (idempotently), and the round trip export → delete →
import → export giving the same records."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from service.domain.sessions import buffer_key
from service.lifespan import State
from service.storage.records import VectorFilter, VectorQuery
from tests.api.helpers import add_memories, assert_problem, drained, new_session, post_messages, search

FACTS = ("My sister Ines lives in Porto.", "I play the cello on Sundays.")


async def populate(client: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    """Two sessions with messages, memories (one changed, one deleted) for ``user_id``."""
    first = (await new_session(client, user_id, metadata={"channel": "web"}))["id"]
    second = (await new_session(client, user_id))["id"]
    await post_messages(client, first, "I adopted a tabby cat named Miso.", "Lovely name!", "She is two years old.")
    await post_messages(client, second, "Remind me to water the ferns.")
    kept, changed, dropped = await add_memories(
        client, *({"user_id": user_id, "content": c} for c in (*FACTS, "I dislike olives."))
    )
    patched = await client.patch(f"/v1/memories/{changed['memory']['id']}", json={"content": "I play the cello on Saturdays."})
    assert patched.status_code == 200
    assert (await client.delete(f"/v1/memories/{dropped['memory']['id']}")).status_code == 204
    await drained(client)
    return {"sessions": [first, second], "memory": kept["memory"]["id"]}


def state_of(app: FastAPI) -> State:
    state: State = app.state.memory
    return state


async def rows_of(app: FastAPI, tenant: str, user_id: str, sessions: list[str]) -> dict[str, int]:
    """The user's rows in every SQL table, counted straight from the engine."""
    by_user = ("sessions", "memories", "memory_versions", "memory_terms", "documents", "user_profiles")
    counts: dict[str, int] = {}
    async with state_of(app).backends.db.engine.connect() as conn:  # type: ignore[attr-defined]
        for table in by_user:
            result = await conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t AND user_id = :u"), {"t": tenant, "u": user_id}
            )
            counts[table] = int(result.scalar_one())
        for table in ("messages", "session_digests"):
            result = await conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t AND session_id IN ({','.join(':s' + str(i) for i in range(len(sessions)))})"),
                {"t": tenant, **{f"s{i}": s for i, s in enumerate(sessions)}},
            )
            counts[table] = int(result.scalar_one())
    return counts


async def points_of(app: FastAPI, tenant: str, user_id: str) -> int:
    """The user's points in the vector index, read straight from the engine."""
    state = state_of(app)
    probe = (await state.backends.embedder.embed(["anything"]))[0]
    hits = await state.backends.vectors.search(
        VectorQuery(filter=VectorFilter(tenant, user_id=user_id), limit=100, dense=probe)
    )
    return len(hits)


async def export_lines(client: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/users/{user_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line]


def comparable(lines: list[dict[str, Any]]) -> list[str]:
    """The lines as sorted canonical JSON, without the export's own time stamp."""
    kept = [{k: v for k, v in line.items() if k != "exported_at"} for line in lines]
    return sorted(json.dumps(line, sort_keys=True) for line in kept)


async def import_lines(client: httpx.AsyncClient, user_id: str, lines: list[dict[str, Any]] | bytes) -> httpx.Response:
    body = lines if isinstance(lines, bytes) else "\n".join(json.dumps(line) for line in lines).encode() + b"\n"
    return await client.post(
        f"/v1/users/{user_id}/import", content=body, headers={"content-type": "application/x-ndjson"}
    )


class TestDeleteUser:
    async def test_every_engine_forgets_the_user_and_only_them(
        self, client: httpx.AsyncClient, app: FastAPI, settings: Any
    ) -> None:
        tenant = settings.default_tenant
        mine = await populate(client, "u1")
        theirs = await populate(client, "u2")
        assert await points_of(app, tenant, "u1") > 0

        response = await client.delete("/v1/users/u1")
        assert response.status_code == 200, response.text
        deleted = response.json()["deleted"]
        assert deleted["sessions"] == 2 and deleted["messages"] == 4 and deleted["memories"] >= 2
        assert deleted["vectors"] >= deleted["memories"] and deleted["documents"] == 0

        assert_problem(await client.get("/v1/users/u1"), 404)
        assert (await client.get("/v1/sessions", params={"user_id": "u1"})).json()["items"] == []
        assert (await client.get("/v1/memories", params={"user_id": "u1"})).json()["items"] == []
        assert await search(client, "cello", user_id="u1") == []
        for session_id in mine["sessions"]:
            assert_problem(await client.get(f"/v1/sessions/{session_id}/messages"), 404)

        assert set((await rows_of(app, tenant, "u1", mine["sessions"])).values()) == {0}
        assert await points_of(app, tenant, "u1") == 0
        buffer = state_of(app).backends.buffer
        for session_id in mine["sessions"]:
            assert await buffer.recent(buffer_key(tenant, session_id), 10) is None

        assert (await client.get("/v1/users/u2")).status_code == 200
        assert [h["memory"]["content"] for h in await search(client, "Ines lives", user_id="u2")][0] == FACTS[0]
        assert (await rows_of(app, tenant, "u2", theirs["sessions"]))["messages"] == 4

    async def test_an_unknown_user_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.delete("/v1/users/nobody"), 404)
        assert_problem(await client.get("/v1/users/nobody/export"), 404)


class TestExportImport:
    async def test_round_trip_gives_the_same_records(self, client: httpx.AsyncClient) -> None:
        await populate(client, "u1")
        before = await export_lines(client, "u1")
        kinds = [line["kind"] for line in before]
        assert kinds[0] == "user" and {"session", "message", "memory", "memory_version"} <= set(kinds)
        assert (await client.delete("/v1/users/u1")).status_code == 200

        restored = await import_lines(client, "u1", before)
        assert restored.status_code == 200, restored.text
        imported = restored.json()["imported"]
        assert imported["session"] == 2 and imported["message"] == 4 and imported["memory"] == kinds.count("memory")
        assert imported["memory_version"] == kinds.count("memory_version")
        await drained(client)

        after = await export_lines(client, "u1")
        assert comparable(after) == comparable(before)
        found = await search(client, "who lives in Porto", user_id="u1")
        assert found and found[0]["memory"]["content"] == FACTS[0]  # re-indexed
        history = [line for line in after if line["kind"] == "memory_version"]
        assert {v["op"] for v in history} >= {"created", "updated", "deleted"}

    async def test_importing_twice_changes_nothing(self, client: httpx.AsyncClient) -> None:
        await populate(client, "u1")
        lines = await export_lines(client, "u1")
        again = await import_lines(client, "u1", lines)
        assert again.status_code == 200, again.text
        assert set(again.json()["imported"].values()) <= {0}
        assert comparable(await export_lines(client, "u1")) == comparable(lines)

    async def test_a_bad_line_is_422_naming_it(self, client: httpx.AsyncClient) -> None:
        await new_session(client, "u1")
        body = b'{"kind": "user", "id": "u1"}\n{"kind": "memory", "id": "x"}\n'
        problem = assert_problem(await import_lines(client, "u1", body), 422)
        assert problem["detail"].startswith("line 2:")
        assert_problem(await import_lines(client, "u1", b'{"kind": "user", "id": NaN}\n'), 422)
        assert_problem(await import_lines(client, "u1", b"not json\n"), 422)

    async def test_messages_cannot_join_another_users_session(self, client: httpx.AsyncClient) -> None:
        theirs = (await new_session(client, "u2"))["id"]
        line = {
            "kind": "message", "id": "5b2c3d9e-0000-4000-8000-000000000001", "session_id": theirs, "role": "user",
            "content": "hijack", "name": None, "metadata": {}, "created_at": "2024-01-01T00:00:00Z", "token_count": 1,
        }
        problem = assert_problem(await import_lines(client, "u1", [line]), 422)
        assert "another user" in problem["detail"]
        assert (await client.get(f"/v1/sessions/{theirs}/messages")).json()["items"] == []


@pytest.mark.parametrize("kind", ["user", "memory"])
def test_line_kinds_are_documented(kind: str) -> None:
    from service.schemas import portability

    assert kind in (portability.__doc__ or "")
