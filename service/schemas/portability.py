"""The lines of a user's export (``application/x-ndjson``), and what an import accepts.

One JSON object a line, each with a ``kind``: ``user`` first, then ``profile``, ``session``s each
followed by its ``message``s, ``memory``s, ``memory_version``s and ``document``s. Everything a
restore needs is in the lines; derived data (vectors, buffers, keyword terms, profile facts and
topics, document chunks) is rebuilt from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from service.schemas.common import ClientId
from service.schemas.memories import MemoryType, Modality
from service.schemas.messages import Role
from service.schemas.validators import MetadataIn, RecordId, SafeStr, UtcDatetime, record_json

FORMAT = 1

RecordJson = Annotated[dict[str, Any], AfterValidator(record_json)]
Text = Annotated[SafeStr, StringConstraints(max_length=2_000_000)]
Name = Annotated[SafeStr, StringConstraints(min_length=1, max_length=128)]


class LineModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserLine(LineModel):
    kind: Literal["user"] = "user"
    id: ClientId
    format: int = Field(FORMAT, ge=1, le=FORMAT)
    exported_at: UtcDatetime | None = None


class ProfileLine(LineModel):
    kind: Literal["profile"] = "profile"
    fields: MetadataIn
    created_at: UtcDatetime
    updated_at: UtcDatetime


class DigestPart(LineModel):
    """A session's rolling summary and how many messages each digest step had taken."""

    summary: Text
    summary_tokens: int = Field(ge=0)
    summary_at: UtcDatetime | None
    summarized_count: int = Field(ge=0)
    condensed_count: int = Field(ge=0)
    extracted_count: int = Field(ge=0)


class SessionLine(LineModel):
    kind: Literal["session"] = "session"
    id: ClientId
    agent_id: ClientId | None
    metadata: MetadataIn
    created_at: UtcDatetime
    updated_at: UtcDatetime
    digest: DigestPart | None = None


class MessageLine(LineModel):
    kind: Literal["message"] = "message"
    id: RecordId
    session_id: ClientId
    role: Role
    content: Text
    name: Name | None
    metadata: MetadataIn
    created_at: UtcDatetime
    token_count: int = Field(ge=0)


class MemoryLine(LineModel):
    kind: Literal["memory"] = "memory"
    id: RecordId
    session_id: ClientId | None
    agent_id: ClientId | None
    type: MemoryType
    content: Text
    modality: Modality
    media_url: Annotated[SafeStr, StringConstraints(max_length=2048)] | None
    importance: float = Field(ge=0.0, le=1.0)
    topic: Annotated[SafeStr, StringConstraints(max_length=128)] | None
    keywords: list[Annotated[SafeStr, StringConstraints(max_length=100)]] = Field(max_length=64)
    metadata: MetadataIn
    speaker: Name | None
    event_time: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime
    expires_at: UtcDatetime | None
    source_ids: list[RecordId] = Field(max_length=10_000)
    position: int | None = Field(None, ge=0)
    version: int = Field(ge=1)


class VersionLine(LineModel):
    kind: Literal["memory_version"] = "memory_version"
    memory_id: RecordId
    version: int = Field(ge=1)
    op: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    changes: RecordJson
    snapshot: RecordJson
    at: UtcDatetime


class DocumentLine(LineModel):
    kind: Literal["document"] = "document"
    id: RecordId
    title: Annotated[SafeStr, StringConstraints(min_length=1, max_length=512)]
    content: Text
    metadata: MetadataIn
    chunk_tokens: int = Field(ge=1)
    overlap_tokens: int = Field(ge=0)
    created_at: UtcDatetime
    updated_at: UtcDatetime


Line = Annotated[
    UserLine | ProfileLine | SessionLine | MessageLine | MemoryLine | VersionLine | DocumentLine,
    Field(discriminator="kind"),
]


class ImportResult(BaseModel):
    """What an import added (records already there are left as they are, so a second run adds 0)."""

    imported: dict[str, int] = Field(description="New records by kind.")
    skipped: dict[str, int] = Field(description="Records that were already there, by kind.")


class ErasedCounts(BaseModel):
    sessions: int
    messages: int
    memories: int
    documents: int
    vectors: int = Field(description="Points removed from the vector index (memories and document chunks).")


class Erasure(BaseModel):
    deleted: ErasedCounts
