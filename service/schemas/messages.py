"""Messages and the short-term buffer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.common import Metadata, RecordModel, RequestModel
from service.schemas.validators import MetadataIn, NonBlank, SafeStr, UtcDatetime

Role = Literal["user", "assistant", "system", "tool"]


class MessageIn(RequestModel):
    role: Role
    content: NonBlank = Field(
        description="The message text, not blank (limit: MEMORY_MAX_CONTENT_CHARS characters, default 32000)."
    )
    name: SafeStr | None = Field(None, min_length=1, max_length=128, description="Who spoke (a person's or a tool's name).")
    created_at: UtcDatetime | None = Field(
        None, description="When it was said (ISO-8601); now when absent, UTC when no zone."
    )
    metadata: MetadataIn = Field(default_factory=dict)


class MessageBatch(RequestModel):
    messages: list[MessageIn] = Field(
        min_length=1, description="One or more messages (limit: MEMORY_MAX_BATCH_ITEMS, default 100)."
    )


class Message(RecordModel):
    id: str
    session_id: str
    role: Role
    content: str
    name: str | None
    metadata: Metadata
    created_at: datetime
    token_count: int


class MessageList(BaseModel):
    items: list[Message]


class BufferedMessage(RecordModel):
    id: str
    role: Role
    content: str
    name: str | None
    created_at: datetime
    token_count: int


class Buffer(BaseModel):
    """The session's recent messages, ready to put in a prompt."""

    session_id: str
    messages: list[BufferedMessage]
    total_tokens: int = Field(description="Sum of the messages' token counts (o200k_base by default).")
    cap: int = Field(description="Most messages the buffer keeps (MEMORY_BUFFER_MAX_MESSAGES).")
    ttl_seconds: int = Field(description="Idle time after which the buffer expires (it is rebuilt from SQL).")
    rebuilt: bool = Field(description="True when this read rebuilt the buffer from the episodic record.")
