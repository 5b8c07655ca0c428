"""List the memory tools of ``memory-service mcp`` and call one, with the MCP Python SDK's client.

    # spawns `memory-service mcp` over stdio, as Claude Desktop does with examples/mcp/claude_desktop_config.json
    python examples/mcp_client.py --url http://127.0.0.1:8000 --user ann save_memory '{"content": "I have a cat, Miso."}'
    python examples/mcp_client.py --user ann search_memory '{"query": "pets"}'
    # or talk to one already serving streamable HTTP (memory-service mcp --transport http)
    python examples/mcp_client.py --mcp-url http://127.0.0.1:8765/mcp --user ann get_context '{"max_tokens": 500}'

Prints each tool with the first line of its description, then the tool's answer; exits 1 when the
tool reports an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def memory_service_command() -> str:
    """The ``memory-service`` script: next to this Python (a virtualenv), else on PATH."""
    beside = Path(sys.executable).with_name("memory-service")
    return str(beside) if beside.exists() else shutil.which("memory-service") or "memory-service"


async def run(
    tool: str,
    arguments: dict[str, Any],
    *,
    url: str | None = None,
    api_key: str | None = None,
    user_id: str | None = None,
    mcp_url: str | None = None,
) -> tuple[list[str], str, bool]:
    """Connect, list the tools and call ``tool``; (tool lines, the answer's text, whether it is an error)."""
    async with AsyncExitStack() as stack:
        if mcp_url:
            read, write = await stack.enter_async_context(streamable_http_client(mcp_url))
        else:
            args = ["mcp"] + (["--url", url] if url else []) + (["--user-id", user_id] if user_id else [])
            env = {"MEMORY_API_KEY": api_key} if api_key else None  # not on the command line, where ps shows it
            params = StdioServerParameters(command=memory_service_command(), args=args, env=env)
            read, write = await stack.enter_async_context(stdio_client(params))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        tools = (await session.list_tools()).tools
        lines = [f"{t.name}: {(t.description or '').splitlines()[0]}" for t in tools]
        wanted = next((t for t in tools if t.name == tool), None)
        if wanted is None:
            return lines, f"no tool {tool!r}", True
        if user_id and "user_id" in wanted.input_schema.get("properties", {}):
            arguments = {"user_id": user_id, **arguments}  # a server that serves every user takes it per call
        result = await session.call_tool(tool, arguments)
        text = "\n".join(block.text for block in result.content if block.type == "text")
        return lines, text, result.is_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", nargs="?", default="search_memory")
    parser.add_argument("arguments", nargs="?", default='{"query": "what do you know about me?"}', help="JSON object")
    parser.add_argument("--url", default=os.environ.get("MEMORY_SERVICE_URL"), help="the memory service (stdio mode)")
    parser.add_argument("--api-key", default=os.environ.get("MEMORY_API_KEY"), help="its API key (stdio mode)")
    parser.add_argument("--user", default="me", help="whose memory")
    parser.add_argument("--mcp-url", help="an MCP server on streamable HTTP, instead of spawning one")
    args = parser.parse_args(argv)
    lines, text, failed = asyncio.run(
        run(args.tool, json.loads(args.arguments), url=args.url, api_key=args.api_key, user_id=args.user,
            mcp_url=args.mcp_url)
    )
    print("\n".join(lines))
    print(f"--- {args.tool}\n{text}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
