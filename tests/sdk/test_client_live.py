"""The SDK against a real service on a loopback port: every resource, the errors, idempotent retries, API keys."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from memory_service_client import (
    AsyncMemoryServiceClient,
    AuthenticationError,
    ConflictError,
    MemoryServiceClient,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)

from service.settings import Settings
from tests.api.auth_fixtures import bearer, secured
from tests.conftest import app_for, migrated
from tests.live import live_server

CONVERSATION = [
    {"role": "user", "content": "I moved to Lisbon last spring."},
    {"role": "assistant", "content": "How are you finding it?"},
    {"role": "user", "content": "Loving the light, hating the hills."},
    {"role": "assistant", "content": "The trams help with the hills."},
    {"role": "user", "content": "My sister Marta visits in June."},
]


def sessions_flow(url: str) -> None:
    with MemoryServiceClient(url, timeout=30) as client:
        session = client.sessions.create(user_id="ann", id="chat-1", metadata={"channel": "web"})
        assert (session.id, session.user_id, session.metadata) == ("chat-1", "ann", {"channel": "web"})
        with pytest.raises(ConflictError) as taken:
            client.sessions.create(user_id="ann", id="chat-1")
        assert taken.value.status == 409 and taken.value.problem is not None and taken.value.problem.code == "conflict"

        stored = client.sessions.add_messages("chat-1", CONVERSATION)
        assert [m.content for m in stored] == [m["content"] for m in CONVERSATION]
        assert all(m.session_id == "chat-1" and m.token_count and m.token_count > 0 for m in stored)

        buffer = client.sessions.buffer("chat-1", last_n=2)
        assert [m.content for m in buffer.messages] == [m["content"] for m in CONVERSATION[-2:]]
        assert buffer.total_tokens == sum(m.token_count or 0 for m in buffer.messages) and buffer.cap

        page = client.sessions.messages("chat-1", limit=2)
        assert len(page.items) == 2 and page.next_cursor
        every = list(client.sessions.iter_messages("chat-1", limit=2))  # three pages, the cursor followed
        assert [m.id for m in every] == [m.id for m in stored]
        newest = list(client.sessions.iter_messages("chat-1", order="desc", limit=3))
        assert [m.id for m in newest] == [m.id for m in reversed(stored)]

        summary = client.sessions.summary("chat-1")
        assert summary.text == "" and summary.message_count == 0  # nothing has left the buffer
        context = client.sessions.context("chat-1", max_tokens=300, query="Where does Ann live?")
        assert "Lisbon" in context.prompt and 0 < context.tokens <= 300
        assert {s.name for s in context.sections} >= {"recent"}

        updated = client.sessions.update("chat-1", agent_id="helper")
        assert updated.agent_id == "helper" and updated.metadata == {"channel": "web"}
        assert [s.id for s in client.sessions.iter(user_id="ann")] == ["chat-1"]
        tools = client.tools.list()
        assert {t.function.name for t in tools} >= {"search_memory", "save_memory", "get_context"}
        saved = client.sessions.call_tool("chat-1", "save_memory", {"content": "Ann's sister is called Marta."})
        assert saved.content.startswith(("Saved", "Merged", "Already", "Updated")) and saved.data["id"]

        client.sessions.delete("chat-1")
        with pytest.raises(NotFoundError) as gone:
            client.sessions.get("chat-1")
        error = gone.value
        assert error.status == 404 and error.problem is not None and error.problem.code == "not_found"
        assert error.problem.instance == "/v1/sessions/chat-1" and error.request_id


async def test_sessions_messages_buffer_and_context(app: FastAPI) -> None:
    async with live_server(app) as url:
        await asyncio.to_thread(sessions_flow, url)


async def test_memories_with_the_async_client(app: FastAPI) -> None:
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as client:
        written = await client.memories.add(
            user_id="ann", content="Ann is allergic to peanuts.", importance=0.9, topic="health", metadata={"src": "t"}
        )
        assert written.status == "created" and written.memory.version == 1
        again = await client.memories.add(user_id="ann", content="Ann is allergic to peanuts.")
        assert again.status == "duplicate" and again.memory.id == written.memory.id
        memory_id = written.memory.id
        batch = await client.memories.add_many([
            {"user_id": "ann", "content": "Ann plays the cello on Sundays.", "type": "procedural"},
            {"user_id": "bob", "content": "Bob collects stamps."},
        ])
        assert [r.status for r in batch] == ["created", "created"]

        fetched = await client.memories.get(memory_id)
        assert (fetched.content, fetched.topic, fetched.importance) == ("Ann is allergic to peanuts.", "health", 0.9)
        changed = await client.memories.update(memory_id, content="Ann is allergic to peanuts and cashews.")
        assert changed.version == 2
        history = await client.memories.history(memory_id)
        assert [v.op for v in history.versions] == ["created", "updated"]

        hits = await client.memories.search(query="what is Ann allergic to?", user_id="ann", limit=3)
        assert hits and hits[0].memory is not None and hits[0].memory.id == memory_id
        assert hits[0].score > 0 and "semantic" in hits[0].parts
        assert all(h.memory is not None and h.memory.user_id == "ann" for h in hits)

        page = await client.memories.list(user_id="ann", limit=1)
        assert len(page.items) == 1 and page.next_cursor
        ann = [m.id async for m in client.memories.iter(user_id="ann", limit=1)]
        assert len(ann) == 2 and memory_id in ann
        procedural = await client.memories.list(user_id="ann", type="procedural")
        assert [m.content for m in procedural.items] == ["Ann plays the cello on Sundays."]

        with pytest.raises(ValidationError) as invalid:
            await client.memories.add(user_id="ann", content="   ")
        assert invalid.value.status == 422 and invalid.value.errors, "FastAPI's errors list is kept"
        await client.memories.delete(memory_id)
        with pytest.raises(NotFoundError):
            await client.memories.get(memory_id)


async def test_users_profiles_export_erase_and_restore(app: FastAPI) -> None:
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as client:
        await client.sessions.create(user_id="cleo", id="c-1")
        await client.sessions.add_messages("c-1", [{"role": "user", "content": "I run a bakery in Porto."}])
        await client.memories.add(user_id="cleo", content="Cleo bakes sourdough every morning.")
        await client.memories.add(user_id="dan", content="Dan likes jazz.")

        user = await client.users.get("cleo")
        assert (user.session_count, user.message_count) == (1, 1) and user.memory_count >= 1
        assert [u.id async for u in client.users.iter(limit=1)] == ["cleo", "dan"]
        profile = await client.users.update_profile("cleo", {"name": "Cleo", "city": "Porto"})
        assert profile.fields == {"name": "Cleo", "city": "Porto"}
        profile = await client.users.update_profile("cleo", {"city": None})
        assert (await client.users.profile("cleo")).fields == {"name": "Cleo"} == profile.fields

        lines = await client.users.export("cleo")
        kinds = [line["kind"] for line in lines]
        assert kinds[0] == "user" and {"profile", "session", "message", "memory"} <= set(kinds)
        erased = await client.users.delete("cleo")
        assert erased.deleted.sessions == 1 and erased.deleted.messages == 1 and erased.deleted.memories >= 2
        with pytest.raises(NotFoundError):
            await client.users.get("cleo")
        restored = await client.users.restore("cleo", lines)
        assert restored.imported["session"] == 1 and restored.imported["message"] == 1
        assert (await client.users.get("cleo")).message_count == 1
        assert (await client.sessions.buffer("c-1")).messages[0].content == "I run a bakery in Porto."


class DropsFirstAnswer(httpx.AsyncBaseTransport):
    """Delivers the first POST of messages to the service, then loses its answer (as a reset connection would)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.posts: list[httpx.Request] = []
        self.replayed: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "POST" or not request.url.path.endswith("/messages"):
            return response
        self.posts.append(request)
        if len(self.posts) == 1:
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset after the service answered")
        self.replayed.append(response.headers.get("Idempotent-Replayed"))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_write_whose_answer_was_lost_is_retried_once_and_stored_once(app: FastAPI) -> None:
    async with live_server(app) as url:
        transport = DropsFirstAnswer()
        async with AsyncMemoryServiceClient(url, transport=transport) as client:
            client._transport.sleep = lambda seconds: asyncio.sleep(0)  # noqa: SLF001
            session = await client.sessions.create(user_id="eve")
            stored = await client.sessions.add_messages(session.id, [{"role": "user", "content": "Only once, please."}])
            history = await client.sessions.messages(session.id)
        first, retried = transport.posts
        assert first.headers["Idempotency-Key"] == retried.headers["Idempotency-Key"]
        assert transport.replayed == ["true"], "the retry got the first answer back"
        assert [m.content for m in history.items] == ["Only once, please."] and stored[0].id == history.items[0].id


async def test_api_keys_and_rate_limits(settings: Settings, embedder: object) -> None:
    keyed = secured(settings, rate_limit_per_minute=3)
    assert keyed.admin_key is not None
    admin = keyed.admin_key.get_secret_value()
    await migrated(keyed.sql_url)
    async with live_server(app_for(keyed, embedder)) as url:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=url, headers=bearer(admin)) as http:
            tenant = f"tn-{uuid.uuid4().hex[:8]}"
            assert (await http.post("/v1/admin/tenants", json={"id": tenant})).status_code == 201
            issued = await http.post("/v1/admin/keys", json={"tenant_id": tenant, "role": "client"})
            key = issued.json()["key"]
        async with AsyncMemoryServiceClient(url, api_key=key, max_retries=0) as client:
            session = await client.sessions.create(user_id="fay")
            assert (await client.sessions.get(session.id)).user_id == "fay"
            with pytest.raises(RateLimitedError) as limited:  # 3 a minute: the 4th, or the 7th across a minute's end
                for _ in range(5):
                    await client.sessions.list()
            assert limited.value.status == 429 and limited.value.retry_after is not None
            assert 0 < limited.value.retry_after <= 60 and limited.value.code == "rate_limited"
        async with AsyncMemoryServiceClient(url, api_key="msk_not-a-key") as stranger:
            with pytest.raises(AuthenticationError) as refused:
                await stranger.sessions.list()
        assert refused.value.status == 401 and refused.value.problem is not None
        assert refused.value.response is not None and refused.value.response.headers["WWW-Authenticate"]
