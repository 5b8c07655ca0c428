"""examples/mcp_client.py and examples/mcp/claude_desktop_config.json against a live service."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from mcp import ClientSession, StdioServerParameters, stdio_client
from memory_service_client import AsyncMemoryServiceClient

from tests.live import live_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
import mcp_client  # noqa: E402

TOOLS = {"search_memory", "save_memory", "update_memory", "delete_memory", "get_context"}


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_the_client_lists_the_tools_and_calls_one(app: FastAPI) -> None:
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as service:
        lines, text, failed = await mcp_client.run(
            "save_memory", {"content": "Ann's favourite colour is teal."}, url=url, user_id="ann"
        )
        assert not failed and text.startswith("Saved: Ann's favourite colour is teal.")
        assert {line.split(":")[0] for line in lines} == TOOLS
        [memory] = (await service.memories.list(user_id="ann", type="semantic")).items
        assert memory.content == "Ann's favourite colour is teal."
        lines, text, failed = await mcp_client.run("forget_everything", {}, url=url, user_id="ann")
        assert failed and text == "no tool 'forget_everything'"


async def test_the_claude_desktop_config_starts_a_working_server(app: FastAPI) -> None:
    config = json.loads((EXAMPLES / "mcp" / "claude_desktop_config.json").read_text())
    server = config["mcpServers"]["memory"]
    assert server["command"] == "memory-service" and server["args"][:1] == ["mcp"]
    async with live_server(app) as url, AsyncMemoryServiceClient(url) as service:
        # As a desktop client would run it, with this service's address and (keys being off here) no key.
        env = server["env"] | {"MEMORY_SERVICE_URL": url, "MEMORY_API_KEY": ""}
        params = StdioServerParameters(command=mcp_client.memory_service_command(), args=server["args"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
            saved = await session.call_tool("save_memory", {"content": "I water the plants on Mondays."})
            assert not saved.is_error
        user = server["args"][server["args"].index("--user-id") + 1]
        [memory] = (await service.memories.list(user_id=user, type="semantic")).items
        assert memory.content == "I water the plants on Mondays."
