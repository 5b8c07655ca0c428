"""``memory-service mcp``: the memory tools over the Model Context Protocol, for MCP clients (Claude Desktop, IDEs).

The server is a thin adapter in front of a running memory-service, reached over its HTTP API at
``--url`` with ``--api-key``: each MCP tool is the service's own agent tool (``service.domain.tools``:
the same names, descriptions and parameter schemas as ``GET /v1/tools``), run through
``POST /v1/sessions/{id}/tools/{name}`` in a session of the MCP server's own per user
(``mcp-<user_id>``, created on first use). So ownership checks, validation and the text the model
reads are the service's. With ``--user-id`` every tool acts for that user; without it each tool
takes a ``user_id`` argument.

It speaks stdio (the default, for clients that spawn it) or streamable HTTP on ``--host``/``--port``
(path ``/mcp``). It holds the API key, so HTTP on a non-loopback address needs ``--insecure``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from service.domain.tools import TOOLS

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_HTTP_PORT = 8765
#: The agent id of the sessions this server makes (so they are told apart from chat sessions).
AGENT_ID = "mcp"
MAX_ID_CHARS = 128

INSTRUCTIONS = (
    "Long-term memory of the user across conversations. Search it before answering anything about the "
    "user's life, preferences or past conversations; save facts, preferences and events the user tells you; "
    "correct or delete memories that are wrong or that the user asks you to forget."
)

Transport = Literal["stdio", "http"]


def session_id_for(user_id: str) -> str:
    """The MCP server's own session for ``user_id``: ``mcp-<user_id>``, hashed when that is too long."""
    name = f"mcp-{user_id}"
    return name if len(name) <= MAX_ID_CHARS else f"mcp-{hashlib.sha256(user_id.encode()).hexdigest()}"


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict):
        title, detail = body.get("title") or response.reason_phrase, body.get("detail")
        return f"{response.status_code} {title}" + (f": {detail}" if detail else "")
    return f"{response.status_code} {response.reason_phrase}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class ServiceTools:
    """Runs the service's tools over its HTTP API, each user in the MCP server's own session of theirs."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._ready: set[str] = set()

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return await self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ToolError(f"the memory service at {self.http.base_url} is not reachable: {exc!r}") from exc

    async def _ensure_session(self, user_id: str) -> str:
        session_id = session_id_for(user_id)
        if session_id in self._ready:
            return session_id
        created = await self._request("POST", "/v1/sessions", {"id": session_id, "user_id": user_id, "agent_id": AGENT_ID})
        if created.status_code == 409:
            existing = await self._request("GET", f"/v1/sessions/{session_id}")
            if existing.status_code != 200:
                raise ToolError(_problem_text(existing))
            if existing.json().get("user_id") != user_id:
                raise ToolError(f"session {session_id!r} belongs to another user; rename it to use the MCP server")
        elif created.status_code != 201:
            raise ToolError(_problem_text(created))
        self._ready.add(session_id)
        return session_id

    async def _session_gone(self, session_id: str) -> bool:
        response = await self._request("GET", f"/v1/sessions/{session_id}")
        return response.status_code == 404

    async def call(self, user_id: str, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """Run tool ``name``; its text for the model, and its data as the structured result."""
        body = {"arguments": {k: _jsonable(v) for k, v in arguments.items() if v is not None}}
        for attempt in range(2):
            session_id = await self._ensure_session(user_id)
            response = await self._request("POST", f"/v1/sessions/{session_id}/tools/{name}", body)
            if response.status_code == 404 and attempt == 0 and await self._session_gone(session_id):
                self._ready.discard(session_id)  # deleted meanwhile (the user was erased): start it again
                continue
            break
        if response.status_code != 200:
            raise ToolError(_problem_text(response))
        result = response.json()
        data = result.get("data")
        structured = data if isinstance(data, dict) else {"items": data}
        return CallToolResult(content=[TextContent(text=result["content"])], structured_content=structured)


#: ``Annotated`` for types built at run time (a type checker cannot follow them).
_ANNOTATED: Any = Annotated


def _parameters(args: type[BaseModel]) -> list[inspect.Parameter]:
    """The tool's arguments as keyword parameters: the service's types, constraints and descriptions."""
    out = []
    for name, field in args.model_fields.items():
        annotation = _ANNOTATED[(field.annotation, *field.metadata, Field(description=field.description))]
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
    return out


USER_ID = inspect.Parameter(
    "user_id",
    inspect.Parameter.KEYWORD_ONLY,
    annotation=Annotated[str, Field(min_length=1, max_length=128, description="The user whose memory this is.")],
)


def tool_function(
    tools: ServiceTools, name: str, args: type[BaseModel], user_id: str | None
) -> Callable[..., Awaitable[CallToolResult]]:
    """An MCP tool for service tool ``name``: its signature is the tool's arguments (plus ``user_id`` when not pinned)."""

    async def run(**arguments: Any) -> CallToolResult:
        user = user_id if user_id is not None else arguments.pop("user_id")
        return await tools.call(user, name, arguments)

    parameters = ([] if user_id is not None else [USER_ID]) + _parameters(args)
    run.__signature__ = inspect.Signature(parameters, return_annotation=CallToolResult)  # type: ignore[attr-defined]
    run.__name__ = name
    return run


def build_server(tools: ServiceTools, user_id: str | None = None) -> MCPServer:
    """An MCP server offering the service's memory tools (search, save, update, delete, get_context)."""
    server: MCPServer = MCPServer("memory-service", instructions=INSTRUCTIONS, log_level="WARNING")
    for name, tool in TOOLS.items():
        description = tool.schema()["function"]["description"]
        server.add_tool(tool_function(tools, name, tool.args, user_id), name=name, description=description)
    return server


async def serve(
    *, transport: Transport, url: str, api_key: str | None, user_id: str | None, host: str, port: int
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as http:
        server = build_server(ServiceTools(http), user_id)
        if transport == "stdio":
            await server.run_stdio_async()
        else:
            log.info("MCP over streamable HTTP at http://%s:%s/mcp, memory service %s", host, port, url)
            await server.run_streamable_http_async(host=host, port=port)


def run(*, transport: Transport, url: str, api_key: str | None, user_id: str | None, host: str, port: int) -> int:
    anyio.run(lambda: serve(transport=transport, url=url, api_key=api_key, user_id=user_id, host=host, port=port))
    return 0
