"""Every API operation, once: a function of the caller's arguments that builds the :class:`Call`.

The sync and async resources in ``client.py`` bind these; nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from memory_service_client._core import Call
from memory_service_client.models import (
    Buffer,
    Context,
    Erasure,
    ImportResult,
    Memory,
    MemoryHistory,
    MemoryWriteResult,
    Message,
    Page,
    Profile,
    SearchHit,
    Session,
    SessionSummary,
    ToolResult,
    ToolSpec,
    User,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MessageLike = Mapping[str, Any]
Role = Literal["user", "assistant", "system", "tool"]
Order = Literal["asc", "desc"]
SearchMode = Literal["hybrid", "semantic", "keyword"]
When = datetime | str


class _Unset:
    """Marks an argument left out (``None`` means JSON null, e.g. ``expires_at=None`` removes an expiry)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def _seg(value: str) -> str:
    """One path segment, percent-encoded (an id is never taken for a path)."""
    if not value:
        raise ValueError("ids must not be empty")
    return quote(value, safe="")


def _body(**fields: Any) -> dict[str, Any]:
    """The fields that were given: None (and UNSET) ones are left for the service's defaults."""
    return {k: v for k, v in fields.items() if v is not None and v is not UNSET}


def _changes(**fields: Any) -> dict[str, Any]:
    """The fields that were given, None included (it clears the field)."""
    return {k: v for k, v in fields.items() if v is not UNSET}


def _model(kind: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: kind.model_validate_json(response.content)


def _items(kind: Any) -> Callable[[httpx.Response], list[Any]]:
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[kind])
    return lambda response: adapter.validate_python(response.json()["items"])


def _first(kind: type[M]) -> Callable[[httpx.Response], M]:
    items = _items(kind)
    return lambda response: items(response)[0]


def _ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


# --- sessions, messages, context ------------------------------------------------------------


class SessionCalls:
    @staticmethod
    def create(
        *, user_id: str, id: str | None = None, agent_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Call[Session]:
        """Start a session for ``user_id`` (your own ``id``, or a UUID the service makes); 409 if the id is taken."""
        body = _body(id=id, user_id=user_id, agent_id=agent_id, metadata=metadata)
        return Call("POST", "/v1/sessions", _model(Session), json=body)

    @staticmethod
    def get(session_id: str) -> Call[Session]:
        """Read one session."""
        return Call("GET", f"/v1/sessions/{_seg(session_id)}", _model(Session))

    @staticmethod
    def update(
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Call[Session]:
        """Change a session's user, agent or metadata (metadata is replaced whole)."""
        body = _body(user_id=user_id, agent_id=agent_id, metadata=metadata)
        return Call("PATCH", f"/v1/sessions/{_seg(session_id)}", _model(Session), json=body)

    @staticmethod
    def delete(session_id: str) -> Call[None]:
        """Delete a session with its messages, the episodic memories made from them, and its buffer."""
        return Call("DELETE", f"/v1/sessions/{_seg(session_id)}")

    @staticmethod
    def add_messages(session_id: str, messages: Sequence[MessageLike]) -> Call[list[Message]]:
        """Store a batch of messages (``{"role", "content", "name"?, "created_at"?, "metadata"?}``); the stored ones."""
        return Call("POST", f"/v1/sessions/{_seg(session_id)}/messages", _items(Message),
                    json={"messages": list(messages)})

    @staticmethod
    def messages(
        session_id: str,
        *,
        order: Order | None = None,
        after: When | None = None,
        before: When | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[Message]]:
        """One page of the session's full message history (``order="desc"`` for newest first)."""
        params = {"order": order, "after": _when(after), "before": _when(before), "cursor": cursor, "limit": limit}
        return Call("GET", f"/v1/sessions/{_seg(session_id)}/messages", _model(Page[Message]), params=params)

    @staticmethod
    def buffer(session_id: str, *, last_n: int | None = None, max_tokens: int | None = None) -> Call[Buffer]:
        """The short-term buffer: the last ``last_n`` messages, or the newest that fit ``max_tokens``."""
        params = {"last_n": last_n, "max_tokens": max_tokens}
        return Call("GET", f"/v1/sessions/{_seg(session_id)}/buffer", _model(Buffer), params=params)

    @staticmethod
    def summary(session_id: str) -> Call[SessionSummary]:
        """The rolling summary of the messages that have left the buffer."""
        return Call("GET", f"/v1/sessions/{_seg(session_id)}/summary", _model(SessionSummary))

    @staticmethod
    def context(
        session_id: str, *, max_tokens: int, query: str | None = None, types: Sequence[str] | None = None
    ) -> Call[Context]:
        """The prompt-ready main context of the session within ``max_tokens`` (memories relevant to ``query``)."""
        body = _body(max_tokens=max_tokens, query=query, types=list(types) if types else None)
        return Call("POST", f"/v1/sessions/{_seg(session_id)}/context", _model(Context), json=body)

    @staticmethod
    def condense(session_id: str) -> Call[list[Memory]]:
        """Condense the messages not condensed yet into summary memories now; the memories made."""
        return Call("POST", f"/v1/sessions/{_seg(session_id)}/condense", _items(Memory))

    @staticmethod
    def call_tool(session_id: str, name: str, arguments: Mapping[str, Any] | str | None = None) -> Call[ToolResult]:
        """Run one memory-tool call for the session's user (``arguments`` as an object or an LLM's JSON string)."""
        body = {"arguments": arguments if arguments is not None else {}}
        return Call("POST", f"/v1/sessions/{_seg(session_id)}/tools/{_seg(name)}", _model(ToolResult), json=body)

    @staticmethod
    def list(*, user_id: str | None = None, cursor: str | None = None, limit: int | None = None) -> Call[Page[Session]]:
        """One page of sessions, newest first (pass ``next_cursor`` back as ``cursor``)."""
        params = {"user_id": user_id, "cursor": cursor, "limit": limit}
        return Call("GET", "/v1/sessions", _model(Page[Session]), params=params)


def _when(value: When | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


# --- memories --------------------------------------------------------------------------------


class MemoryCalls:
    @staticmethod
    def add(
        *,
        user_id: str,
        content: str,
        type: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        modality: str | None = None,
        media_url: str | None = None,
        importance: float | None = None,
        topic: str | None = None,
        keywords: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        event_time: When | None = None,
        expires_at: When | None = None,
        source_ids: Sequence[str] | None = None,
    ) -> Call[MemoryWriteResult]:
        """Store one long-term memory; ``status`` says created, duplicate, merged or updated."""
        body = _body(
            user_id=user_id, content=content, type=type, session_id=session_id, agent_id=agent_id, modality=modality,
            media_url=media_url, importance=importance, topic=topic, keywords=keywords, metadata=metadata,
            event_time=event_time, expires_at=expires_at, source_ids=source_ids,
        )
        return Call("POST", "/v1/memories", _first(MemoryWriteResult), json=body)

    @staticmethod
    def add_many(memories: Iterable[Mapping[str, Any]]) -> Call[list[MemoryWriteResult]]:
        """Store a batch of memories (each a dict of :meth:`add`'s fields), in one request."""
        return Call("POST", "/v1/memories", _items(MemoryWriteResult), json={"memories": list(memories)})

    @staticmethod
    def get(memory_id: str) -> Call[Memory]:
        """Read one memory."""
        return Call("GET", f"/v1/memories/{_seg(memory_id)}", _model(Memory))

    @staticmethod
    def update(
        memory_id: str,
        *,
        content: str = UNSET,
        type: str = UNSET,
        modality: str = UNSET,
        media_url: str | None = UNSET,
        importance: float = UNSET,
        topic: str | None = UNSET,
        keywords: Sequence[str] = UNSET,
        metadata: Mapping[str, Any] = UNSET,
        event_time: When = UNSET,
        expires_at: When | None = UNSET,
    ) -> Call[Memory]:
        """Change the fields given (a new version; the old one stays in the history). ``expires_at=None`` removes an expiry."""
        body = _changes(
            content=content, type=type, modality=modality, media_url=media_url, importance=importance, topic=topic,
            keywords=keywords, metadata=metadata, event_time=event_time, expires_at=expires_at,
        )
        return Call("PATCH", f"/v1/memories/{_seg(memory_id)}", _model(Memory), json=body)

    @staticmethod
    def delete(memory_id: str) -> Call[None]:
        """Delete a memory (its history keeps a tombstone)."""
        return Call("DELETE", f"/v1/memories/{_seg(memory_id)}")

    @staticmethod
    def history(memory_id: str) -> Call[MemoryHistory]:
        """Every version of a memory, oldest first."""
        return Call("GET", f"/v1/memories/{_seg(memory_id)}/history", _model(MemoryHistory))

    @staticmethod
    def search(
        *,
        query: str,
        user_id: str,
        limit: int | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        types: Sequence[str] | None = None,
        topics: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        after: When | None = None,
        before: When | None = None,
        mode: SearchMode | None = None,
        weights: Mapping[str, float] | None = None,
        mmr: float | None = None,
        min_score: float | None = None,
        sources: Sequence[str] | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> Call[list[SearchHit]]:
        """Hybrid recall over the user's memories, best first; each hit has its ``score`` and ``parts``.

        ``sources`` (``["memories", "documents"]``) and ``namespaces`` (shared document namespaces)
        are sent only when given, for services that search knowledge documents too.
        """
        body = _body(
            query=query, user_id=user_id, limit=limit, session_id=session_id, agent_id=agent_id,
            types=list(types) if types else None, topics=list(topics) if topics else None, metadata=metadata,
            after=after, before=before, mode=mode, weights=weights, mmr=mmr, min_score=min_score,
            sources=list(sources) if sources is not None else None,
            namespaces=list(namespaces) if namespaces is not None else None,
        )
        return Call("POST", "/v1/memories/search", _items(SearchHit), json=body)

    @staticmethod
    def list(
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        type: str | Sequence[str] | None = None,
        topic: str | None = None,
        after: When | None = None,
        before: When | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[Memory]]:
        """One page of memories, newest first, with filters (``after``/``before`` bound the event time)."""
        types = [type] if isinstance(type, str) else list(type) if type else None
        params = {"user_id": user_id, "session_id": session_id, "type": types, "topic": topic,
                  "after": _when(after), "before": _when(before), "cursor": cursor, "limit": limit}
        return Call("GET", "/v1/memories", _model(Page[Memory]), params=params)


# --- users -----------------------------------------------------------------------------------


class UserCalls:
    @staticmethod
    def get(user_id: str) -> Call[User]:
        """One user's counts and first and last activity."""
        return Call("GET", f"/v1/users/{_seg(user_id)}", _model(User))

    @staticmethod
    def profile(user_id: str) -> Call[Profile]:
        """The user's profile: your fields, and the facts and topics derived from their memories."""
        return Call("GET", f"/v1/users/{_seg(user_id)}/profile", _model(Profile))

    @staticmethod
    def update_profile(user_id: str, fields: Mapping[str, Any]) -> Call[Profile]:
        """Change profile fields with a JSON merge patch (a None value removes its key)."""
        return Call("PATCH", f"/v1/users/{_seg(user_id)}/profile", _model(Profile), json={"fields": dict(fields)})

    @staticmethod
    def delete(user_id: str) -> Call[Erasure]:
        """Erase everything of the user from every store; the counts removed."""
        return Call("DELETE", f"/v1/users/{_seg(user_id)}", _model(Erasure))

    @staticmethod
    def export(user_id: str) -> Call[list[dict[str, Any]]]:
        """Everything of the user, as the export's JSON lines (one dict a line, ``kind`` first)."""
        return Call("GET", f"/v1/users/{_seg(user_id)}/export", _ndjson)

    @staticmethod
    def restore(user_id: str, lines: Iterable[Mapping[str, Any]]) -> Call[ImportResult]:
        """Import an export (as :meth:`export` returned it); records already there are skipped."""
        body = b"".join(json.dumps(dict(line), ensure_ascii=False).encode() + b"\n" for line in lines)
        return Call("POST", f"/v1/users/{_seg(user_id)}/import", _model(ImportResult), content=body,
                    headers={"Content-Type": "application/x-ndjson"})

    @staticmethod
    def list(*, cursor: str | None = None, limit: int | None = None) -> Call[Page[User]]:
        """One page of the tenant's users, in id order."""
        return Call("GET", "/v1/users", _model(Page[User]), params={"cursor": cursor, "limit": limit})


class ToolCalls:
    @staticmethod
    def list() -> Call[list[ToolSpec]]:
        """The memory tools in OpenAI function-calling format (``[t.model_dump() for t in ...]`` for an LLM API)."""
        adapter = TypeAdapter(list[ToolSpec])
        return Call("GET", "/v1/tools", lambda r: adapter.validate_python(r.json()))
