"""``memory-service mcp`` driven by the MCP SDK's own client, over stdio and streamable HTTP, against a live service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from memory_service_client import AsyncMemoryServiceClient, NotFoundError

from service.domain.tools import TOOLS
from service.integrations.mcp_server import session_id_for
from service.settings import Settings
from tests.api.auth_fixtures import bearer, secured
from tests.conftest import app_for, migrated
from tests.live import free_port, live_server

MEMORY_SERVICE = str(Path(sys.executable).with_name("memory-service"))
STARTUP_SECONDS = 60.0


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def exercise(session: ClientSession, service: AsyncMemoryServiceClient, user: dict[str, str]) -> None:
    """List the tools, then save, find, update, fetch the context of and delete one memory."""
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == set(TOOLS) == {"search_memory", "save_memory", "update_memory", "delete_memory", "get_context"}
    save = tools["save_memory"]
    assert save.description == TOOLS["save_memory"].schema()["function"]["description"]
    required = set(save.input_schema["required"])
    assert required == ({"content", "user_id"} if user else {"content"})
    assert save.input_schema["properties"]["importance"]["maximum"] == 1.0

    saved = await session.call_tool("save_memory", {**user, "content": "Ann's cat is called Miso.", "importance": 0.8})
    assert not saved.is_error, text_of(saved)
    memory_id = saved.structured_content["id"]
    assert saved.structured_content["status"] == "created" and text_of(saved).startswith("Saved")
    stored = await service.memories.get(memory_id)
    assert (stored.user_id, stored.session_id, stored.importance) == ("ann", session_id_for("ann"), 0.8)

    found = await session.call_tool("search_memory", {**user, "query": "What is the cat called?", "limit": 3})
    assert not found.is_error and "Miso" in text_of(found)
    assert memory_id in [hit["id"] for hit in found.structured_content["items"]]

    updated = await session.call_tool("update_memory", {**user, "id": memory_id, "content": "Ann's cat is called Mochi."})
    assert not updated.is_error and "Mochi" in text_of(updated)
    assert (await service.memories.get(memory_id)).version == 2

    context = await session.call_tool("get_context", {**user, "max_tokens": 200, "query": "Ann's cat"})
    assert not context.is_error and "Mochi" in text_of(context)
    assert 0 < context.structured_content["tokens"] <= 200

    deleted = await session.call_tool("delete_memory", {**user, "id": memory_id})
    assert not deleted.is_error and text_of(deleted) == f"Deleted memory {memory_id}."
    try:
        await service.memories.get(memory_id)
        raise AssertionError("the memory is still there")
    except NotFoundError:
        pass
    again = await session.call_tool("delete_memory", {**user, "id": memory_id})
    assert again.is_error and "not found" in text_of(again), "the service's 404 reaches the model as a tool error"
    blank = await session.call_tool("save_memory", {**user, "content": "   "})
    assert blank.is_error


async def test_stdio_for_one_user(app: FastAPI) -> None:
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as service:
        params = StdioServerParameters(command=MEMORY_SERVICE, args=["mcp", "--url", url, "--user-id", "ann"])
        with tempfile.TemporaryFile("w+") as errors:
            async with stdio_client(params, errlog=errors) as (read, write), ClientSession(read, write) as session:
                await exercise(session, service, {})
        mcp_session = await service.sessions.get(session_id_for("ann"))
        assert (mcp_session.user_id, mcp_session.agent_id) == ("ann", "mcp")


@asynccontextmanager
async def http_mcp_server(*args: str) -> AsyncIterator[str]:
    """``memory-service mcp --transport http`` on a free port; yields its endpoint URL."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = await asyncio.create_subprocess_exec(
            MEMORY_SERVICE, "mcp", "--transport", "http", "--port", str(port), *args, stdout=log, stderr=log
        )
        try:
            async with asyncio.timeout(STARTUP_SECONDS):
                while True:
                    assert process.returncode is None, "the MCP server exited"
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                    except OSError:
                        await asyncio.sleep(0.1)
                        continue
                    writer.close()
                    break
            yield f"http://127.0.0.1:{port}/mcp"
        except BaseException:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_streamable_http_with_an_api_key_and_a_user_id_per_call(settings: Settings, embedder: object) -> None:
    keyed = secured(settings)
    assert keyed.admin_key is not None
    await migrated(keyed.sql_url)
    async with live_server(app_for(keyed, embedder)) as url:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=url, headers=bearer(keyed.admin_key.get_secret_value())) as admin:
            tenant = f"tn-{uuid.uuid4().hex[:8]}"
            assert (await admin.post("/v1/admin/tenants", json={"id": tenant})).status_code == 201
            key = (await admin.post("/v1/admin/keys", json={"tenant_id": tenant, "role": "client"})).json()["key"]
        async with (
            AsyncMemoryServiceClient(url, api_key=key) as service,
            http_mcp_server("--url", url, "--api-key", key) as endpoint,
            streamable_http_client(endpoint) as (read, write),
            ClientSession(read, write) as session,
        ):
            await exercise(session, service, {"user_id": "ann"})
        async with (
            http_mcp_server("--url", url, "--api-key", "msk_wrong") as endpoint,
            streamable_http_client(endpoint) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            refused = await session.call_tool("search_memory", {"user_id": "ann", "query": "cat"})
        assert refused.is_error and "401" in text_of(refused)


def test_http_on_a_public_address_needs_insecure() -> None:
    done = subprocess.run(  # noqa: S603
        [MEMORY_SERVICE, "mcp", "--transport", "http", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2 and "--insecure" in done.stderr
