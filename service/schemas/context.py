"""The main context, the rolling summary and condensation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from service.schemas.common import ClientId, RequestModel
from service.schemas.memories import MAX_QUERY_CHARS, Memory, MemoryType
from service.schemas.validators import NonBlank

MAX_CONTEXT_TOKENS = 200_000


class ContextRequest(RequestModel):
    max_tokens: int = Field(ge=1, le=MAX_CONTEXT_TOKENS, description="Token budget of the whole prompt.")
    query: Annotated[NonBlank, Field(max_length=MAX_QUERY_CHARS)] | None = Field(
        None, description="What to recall memories for (not blank); the session's latest user message when absent."
    )
    types: list[MemoryType] | None = Field(None, max_length=16, description="Only long-term memories of these types.")
    namespaces: list[ClientId] = Field(
        default_factory=list,
        max_length=32,
        description="Shared document namespaces the documents section may draw on (beside the user's own documents).",
    )


class ContextItem(BaseModel):
    id: str = Field(
        description="The memory's or message's id (a rolling-summary line: '<session>#summary-<n>'; "
        "a profile field: '<user>#field-<key>'; a document chunk: the chunk's id)."
    )
    kind: Literal["memory", "message", "summary", "field", "document"]
    tokens: int = Field(description="Tokens of the item's line.")
    score: float | None = Field(description="Its relevance for memories (hybrid score), null otherwise.")


class ContextSection(BaseModel):
    name: Literal["profile", "summary", "memories", "documents", "recent"]
    text: str = Field(description="The section as it stands in the prompt, heading included ('' when empty).")
    tokens: int
    items: list[ContextItem]


class Context(BaseModel):
    """A prompt-ready context: ``prompt`` never exceeds ``max_tokens`` by the configured tokenizer."""

    prompt: str
    tokens: int
    max_tokens: int
    sections: list[ContextSection]


class SessionSummary(BaseModel):
    """The rolling summary of the messages that have left the session's buffer."""

    text: str = Field(description="'' until a message has left the buffer.")
    tokens: int
    message_count: int = Field(description="How many messages the summary covers.")
    covers_until: datetime | None = Field(description="Time of the newest message it covers.")
    updated_at: datetime | None


class CondenseResult(BaseModel):
    items: list[Memory] = Field(description="The summary memories this call made (empty when nothing was new).")
