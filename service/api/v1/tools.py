"""/v1/tools and /v1/sessions/{session_id}/tools/{name}: memory tools for agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.api.deps import SessionsDep, TenantDep, ToolsDep
from service.api.routing import resource_router
from service.api.params import SessionId
from service.domain.tools import tool_schemas
from service.schemas.tools import ToolCall, ToolResult, ToolSpec

router = resource_router("tools")

ToolName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The tool's name, as GET /v1/tools lists it.")
]


@router.get("/tools", response_model=list[ToolSpec])
async def list_tools() -> list[ToolSpec]:
    """The memory tools in OpenAI function-calling format, ready to hand to an LLM."""
    return [ToolSpec.model_validate(spec) for spec in tool_schemas()]


@router.post("/sessions/{session_id}/tools/{name}", response_model=ToolResult)
async def call_tool(
    session_id: SessionId, name: ToolName, body: ToolCall, tools: ToolsDep, sessions: SessionsDep, tenant: TenantDep
) -> ToolResult:
    """Run one tool call for the session's user; ``content`` is the text for the tool message."""
    session = await sessions.get(tenant, session_id)
    result = await tools.call(session, name, body.arguments)
    return ToolResult(content=result.content, data=result.data)
