"""Response models of the memory-service API.

They mirror the service's schemas but are tolerant: unknown fields are kept (``model_extra``), and
everything but a record's identity has a default, so a newer service does not break an older client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Problem(Model):
    """An RFC 9457 problem, as the service answers every error (plus ``code`` and ``request_id``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str = "http_error"
    request_id: str | None = None


class Page(Model, Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


class Session(Model):
    id: str
    user_id: str
    agent_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Message(Model):
    id: str
    session_id: str | None = None
    role: str
    content: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    token_count: int | None = None


class BufferedMessage(Model):
    id: str
    role: str
    content: str
    name: str | None = None
    created_at: datetime | None = None
    token_count: int | None = None


class Buffer(Model):
    """A session's recent messages, ready to put in a prompt."""

    session_id: str
    messages: list[BufferedMessage] = Field(default_factory=list)
    total_tokens: int = 0
    cap: int | None = None
    ttl_seconds: int | None = None
    rebuilt: bool = False


class SessionSummary(Model):
    text: str = ""
    tokens: int = 0
    message_count: int = 0
    covers_until: datetime | None = None
    updated_at: datetime | None = None


class ContextItem(Model):
    id: str
    kind: str
    tokens: int = 0
    score: float | None = None


class ContextSection(Model):
    name: str
    text: str = ""
    tokens: int = 0
    items: list[ContextItem] = Field(default_factory=list)


class Context(Model):
    """A prompt-ready context: ``prompt`` fits ``max_tokens``; ``sections`` say what went in."""

    prompt: str
    tokens: int = 0
    max_tokens: int = 0
    sections: list[ContextSection] = Field(default_factory=list)


class Memory(Model):
    id: str
    user_id: str
    type: str = "semantic"
    content: str
    session_id: str | None = None
    agent_id: str | None = None
    modality: str = "text"
    media_url: str | None = None
    importance: float = 0.5
    topic: str | None = None
    keywords: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    speaker: str | None = None
    event_time: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    source_ids: list[str] = Field(default_factory=list)
    version: int = 1


class MemoryWriteResult(Model):
    """``status``: created, duplicate (identical content already kept), merged or updated (see the README)."""

    memory: Memory
    status: str


class MemoryVersion(Model):
    version: int
    op: str
    changes: dict[str, Any] = Field(default_factory=dict)
    snapshot: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None


class MemoryHistory(Model):
    memory_id: str
    versions: list[MemoryVersion] = Field(default_factory=list)


class SearchHit(Model):
    """One recall hit and its score: a memory (``source == "memory"``) or a knowledge-document chunk.

    A document hit (``source == "document"``, on services that search documents) has no ``memory``;
    its ``content``, ``document_id``, ``title``, ``chunk_index``... stay as attributes (``model_extra``).
    """

    source: str = "memory"
    memory: Memory | None = None
    score: float = 0.0
    parts: dict[str, float] = Field(default_factory=dict)


class User(Model):
    id: str
    session_count: int = 0
    message_count: int = 0
    memory_count: int = 0
    document_count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class ProfileFact(Model):
    id: str
    content: str
    importance: float = 0.5


class ProfileTopic(Model):
    term: str
    weight: float = 0.0


class Profile(Model):
    user_id: str
    fields: dict[str, Any] = Field(default_factory=dict)
    facts: list[ProfileFact] = Field(default_factory=list)
    topics: list[ProfileTopic] = Field(default_factory=list)
    updated_at: datetime | None = None


class ErasedCounts(Model):
    sessions: int = 0
    messages: int = 0
    memories: int = 0
    documents: int = 0
    vectors: int = 0


class Erasure(Model):
    deleted: ErasedCounts


class ImportResult(Model):
    imported: dict[str, int] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)


class ToolFunction(Model):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class ToolSpec(Model):
    """A memory tool in the OpenAI function-calling format; ``model_dump()`` is what an LLM API takes."""

    type: str = "function"
    function: ToolFunction


class ToolResult(Model):
    content: str
    data: Any = None
