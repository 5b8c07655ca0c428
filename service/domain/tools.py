"""Memory tools for agents (MemGPT's cognitive loop): OpenAI function-calling schemas and their runner.

Each tool is a pydantic model of its arguments (whose JSON schema is the ``parameters`` an LLM
sees) and a coroutine that runs it for one session's user. A tool answers ``content`` (the text
the LLM should see as the tool message) and ``data`` (the same, structured).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.domain.clock import as_utc
from service.domain.context import ContextRequest, ContextService, memory_line
from service.domain.errors import InvalidInput, NotFound
from service.domain.memories import MemoryService, NewMemory
from service.domain.search import SearchQuery, SearchService
from service.schemas.validators import NonBlank, RecordId, UtcDatetime, check_window
from service.storage.records import MemoryRecord, SessionRecord

MemoryType = Literal["semantic", "episodic", "procedural", "summary", "profile"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SearchMemoryArgs(_Args):
    """Search the user's long-term memories (all of their past conversations and saved facts)."""

    query: NonBlank = Field(max_length=4000, description="What to look for, in natural language.")
    before: UtcDatetime | None = Field(None, description="Only memories from before this time (ISO 8601).")
    after: UtcDatetime | None = Field(None, description="Only memories from this time on (ISO 8601).")
    types: list[MemoryType] | None = Field(None, max_length=16, description="Only these kinds of memory.")
    limit: int = Field(5, ge=1, le=20, description="How many memories to return.")

    @model_validator(mode="after")
    def _window(self) -> SearchMemoryArgs:
        check_window(self.after, self.before)
        return self


class SaveMemoryArgs(_Args):
    """Save a fact, preference or event about the user to long-term memory."""

    content: NonBlank = Field(max_length=4000, description="The memory, as a self-contained sentence.")
    type: MemoryType = Field("semantic", description="semantic: facts and preferences; episodic: events; procedural: how-tos.")
    importance: float = Field(0.5, ge=0.0, le=1.0, description="How much it matters, 0 to 1.")


class UpdateMemoryArgs(_Args):
    """Correct a memory: replace its content (the old text is kept in its history)."""

    id: RecordId = Field(description="The memory's id, as search_memory returned it.")
    content: NonBlank = Field(max_length=4000, description="The corrected memory.")


class DeleteMemoryArgs(_Args):
    """Forget a memory that is wrong or that the user asked to forget."""

    id: RecordId = Field(description="The memory's id, as search_memory returned it.")


class GetContextArgs(_Args):
    """Fetch the prompt-ready context: profile, conversation summary, relevant memories, recent messages."""

    max_tokens: int = Field(ge=1, le=200_000, description="Token budget of the context.")
    query: Annotated[NonBlank, Field(max_length=4000)] | None = Field(
        None, description="What the memories should be relevant to."
    )


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    data: Any


Run = Callable[["ToolRunner", SessionRecord, Any], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    args: type[_Args]
    run: Run

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema of this tool."""
        parameters = self.args.model_json_schema()
        description = parameters.pop("description", "") or (self.args.__doc__ or "").strip()
        parameters.pop("title", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": description, "parameters": parameters}}


def _hit_data(memory: MemoryRecord, score: float | None = None) -> dict[str, Any]:
    return {
        "id": memory.id,
        "type": memory.type,
        "content": memory.content,
        "speaker": memory.speaker,
        "event_time": memory.event_time.isoformat(),
        "score": score,
    }


class ToolRunner:
    """Runs a tool for a session's user; every memory it touches must be that user's."""

    def __init__(self, memories: MemoryService, search: SearchService, context: ContextService) -> None:
        self.memories = memories
        self.search = search
        self.context = context

    async def own(self, session: SessionRecord, memory_id: str) -> MemoryRecord:
        memory = await self.memories.get(session.tenant_id, memory_id)
        if memory.user_id != session.user_id:
            raise NotFound(f"memory {memory_id!r} not found")
        return memory

    async def call(self, session: SessionRecord, name: str, arguments: dict[str, Any] | str) -> ToolResult:
        tool = TOOLS.get(name)
        if tool is None:
            raise NotFound(f"tool {name!r} not found; tools: {', '.join(TOOLS)}")
        return await tool.run(self, session, parse_arguments(tool, arguments))


def parse_arguments(tool: Tool, arguments: dict[str, Any] | str) -> _Args:
    """The validated arguments; a JSON string (as LLMs emit them) is parsed first."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"arguments is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(arguments, dict):
        raise InvalidInput("arguments must be a JSON object")
    try:
        return tool.args.model_validate(arguments)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise InvalidInput(f"arguments.{where}: {first['msg']} ({len(exc.errors())} error(s) in {tool.name})") from exc


async def _search_memory(runner: ToolRunner, session: SessionRecord, args: SearchMemoryArgs) -> ToolResult:
    found = await runner.search.memories(
        SearchQuery(
            tenant_id=session.tenant_id,
            query=args.query,
            user_id=session.user_id,
            limit=args.limit,
            types=tuple(args.types) if args.types else None,
            after=as_utc(args.after) if args.after else None,
            before=as_utc(args.before) if args.before else None,
        )
    )
    lines = [f"[{f.memory.event_time:%Y-%m-%d}] {memory_line(f.memory)} (id {f.memory.id})" for f in found]
    return ToolResult("\n".join(lines) or "No memories found.", [_hit_data(f.memory, f.score) for f in found])


async def _save_memory(runner: ToolRunner, session: SessionRecord, args: SaveMemoryArgs) -> ToolResult:
    new = NewMemory(
        user_id=session.user_id,
        content=args.content,
        type=args.type,
        session_id=session.id,
        agent_id=session.agent_id,
        importance=args.importance,
    )
    [outcome] = await runner.memories.add(session.tenant_id, [new])
    said = {
        "created": "Saved",
        "duplicate": "Already known",
        "merged": "Merged into an existing memory",
        "updated": "Updated an existing memory (the old text is kept in its history)",
    }[outcome.status]
    return ToolResult(f"{said}: {outcome.memory.content} (id {outcome.memory.id})", {"id": outcome.memory.id, "status": outcome.status})


async def _update_memory(runner: ToolRunner, session: SessionRecord, args: UpdateMemoryArgs) -> ToolResult:
    await runner.own(session, args.id)
    updated = await runner.memories.update(session.tenant_id, args.id, {"content": args.content})
    return ToolResult(f"Updated memory {updated.id}: {updated.content}", _hit_data(updated) | {"version": updated.version})


async def _delete_memory(runner: ToolRunner, session: SessionRecord, args: DeleteMemoryArgs) -> ToolResult:
    await runner.own(session, args.id)
    await runner.memories.delete(session.tenant_id, args.id)
    return ToolResult(f"Deleted memory {args.id}.", {"id": args.id, "deleted": True})


async def _get_context(runner: ToolRunner, session: SessionRecord, args: GetContextArgs) -> ToolResult:
    packed = await runner.context.build(ContextRequest(session.tenant_id, session.id, args.max_tokens, args.query))
    sections = {s.name: {"tokens": s.tokens, "items": len(s.items)} for s in packed.sections}
    return ToolResult(packed.prompt, {"tokens": packed.tokens, "max_tokens": packed.max_tokens, "sections": sections})


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool("search_memory", SearchMemoryArgs, _search_memory),  # type: ignore[arg-type]
        Tool("save_memory", SaveMemoryArgs, _save_memory),  # type: ignore[arg-type]
        Tool("update_memory", UpdateMemoryArgs, _update_memory),  # type: ignore[arg-type]
        Tool("delete_memory", DeleteMemoryArgs, _delete_memory),  # type: ignore[arg-type]
        Tool("get_context", GetContextArgs, _get_context),  # type: ignore[arg-type]
    )
}


def tool_schemas() -> list[dict[str, Any]]:
    return [t.schema() for t in TOOLS.values()]
