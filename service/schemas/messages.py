"""Messages and the short-term buffer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import Metadata, RecordModel

Role = Literal["user", "assistant", "system", "tool"]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(description="The message text (limit: MEMORY_MAX_CONTENT_CHARS characters).")
    name: str | None = Field(None, max_length=128, description="Who spoke (a person's or a tool's name).")
    created_at: datetime | None = Field(None, description="When it was said; now when absent, UTC when no zone.")
    metadata: Metadata = Field(default_factory=dict)


class MessageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[MessageIn] = Field(description="One or more messages (limit: MEMORY_MAX_BATCH_ITEMS).")


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
