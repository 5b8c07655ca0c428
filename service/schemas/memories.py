"""Long-term memories, their history, and recall."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import ClientId, Metadata, RecordModel

MemoryType = Literal["semantic", "episodic", "procedural", "summary", "profile"]
Modality = Literal["text", "image", "audio"]


class MemoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: ClientId
    content: str = Field(description="The memory; for image or audio, its description or transcript.")
    type: MemoryType = Field("semantic", description="semantic: facts, preferences; episodic: events; procedural: how-tos.")
    session_id: ClientId | None = None
    agent_id: ClientId | None = None
    modality: Modality = "text"
    media_url: str | None = Field(None, max_length=2048)
    importance: float = Field(0.5, ge=0.0, le=1.0)
    topic: str | None = Field(None, max_length=128)
    keywords: list[str] | None = Field(None, max_length=64, description="Extracted from the content when absent.")
    metadata: Metadata = Field(default_factory=dict)
    event_time: datetime | None = Field(None, description="When it happened; creation time when absent.")
    expires_at: datetime | None = Field(None, description="After this the memory is never returned and is purged.")
    source_ids: list[str] = Field(default_factory=list, max_length=1000, description="Ids of the messages it came from.")


class MemoryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memories: list[MemoryCreate] = Field(description="One or more memories (limit: MEMORY_MAX_BATCH_ITEMS).")


class MemoryUpdate(BaseModel):
    """Only the fields given change; ``expires_at: null`` removes an expiry."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = None
    type: MemoryType | None = None
    modality: Modality | None = None
    media_url: str | None = Field(None, max_length=2048)
    importance: float | None = Field(None, ge=0.0, le=1.0)
    topic: str | None = Field(None, max_length=128)
    keywords: list[str] | None = Field(None, max_length=64)
    metadata: Metadata | None = None
    event_time: datetime | None = None
    expires_at: datetime | None = None


class Memory(RecordModel):
    id: str
    user_id: str
    session_id: str | None
    agent_id: str | None
    type: MemoryType
    content: str
    modality: Modality
    media_url: str | None
    importance: float
    topic: str | None
    keywords: list[str]
    metadata: Metadata
    speaker: str | None = Field(description="Who said it, for memories made from messages.")
    event_time: datetime
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    source_ids: list[str]
    version: int


class MemoryWriteResult(BaseModel):
    memory: Memory
    status: Literal["created", "duplicate", "merged"] = Field(
        description="duplicate: identical content was already kept; merged: folded into a near-identical memory."
    )


class MemoryWriteResults(BaseModel):
    items: list[MemoryWriteResult]


class MemoryVersion(BaseModel):
    version: int
    op: Literal["created", "updated", "merged", "deleted", "expired"]
    changes: dict[str, Any] = Field(description="{field: [old, new]} for each field that changed.")
    snapshot: dict[str, Any]
    at: datetime


class MemoryHistory(BaseModel):
    memory_id: str
    versions: list[MemoryVersion]


class SearchWeights(BaseModel):
    """How much each score part counts; the defaults are the tuned recipe (see the README)."""

    model_config = ConfigDict(extra="forbid")

    semantic: float = Field(1.0, ge=0.0, le=10.0)
    keyword: float = Field(1.0, ge=0.0, le=10.0)
    speaker: float = Field(1.0, ge=0.0, le=10.0, description="Memories said by a person the query names.")
    date: float = Field(0.8, ge=0.0, le=10.0, description="Memories from a date the query mentions.")
    context: float = Field(0.9, ge=0.0, le=10.0, description="Memories whose neighbouring turns match the query.")
    recency: float = Field(0.0, ge=0.0, le=10.0, description="Newer event times.")
    recency_half_life_days: float = Field(30.0, gt=0.0, le=36500.0)
    importance: float = Field(0.0, ge=0.0, le=10.0, description="The memory's importance.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    user_id: ClientId
    session_id: ClientId | None = None
    agent_id: ClientId | None = None
    types: list[MemoryType] | None = None
    topics: list[str] | None = Field(None, max_length=50)
    metadata: dict[str, str | int | float | bool] | None = Field(None, description="Equality filters on metadata keys.")
    after: datetime | None = Field(None, description="Only memories whose event time is at or after this.")
    before: datetime | None = Field(None, description="Only memories whose event time is before this.")
    limit: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    weights: SearchWeights = Field(default_factory=SearchWeights)
    mmr: float | None = Field(None, ge=0.0, le=1.0, description="MMR lambda for diversity (1 = pure relevance).")
    min_score: float | None = Field(None, description="Drop results scoring below this.")


class ScoreParts(BaseModel):
    """Each part is 0..1; the score is their weighted sum."""

    semantic: float = Field(description="Cosine similarity, min-max scaled over the candidates.")
    keyword: float = Field(description="BM25 score divided by the best keyword hit's.")
    speaker: float = Field(description="1 if said by the first person the query names, 0.5 for one named later.")
    date: float = Field(description="1 inside a date the query mentions, decaying by distance outside it.")
    context: float = Field(description="How well the neighbouring turns of the same session match.")
    recency: float = Field(description="Halves every recency_half_life_days of event-time age.")
    importance: float


class SearchHit(BaseModel):
    memory: Memory
    score: float
    parts: ScoreParts


class SearchResults(BaseModel):
    items: list[SearchHit]


class QueueState(BaseModel):
    pending: int
    failed: int
    oldest_pending_age_seconds: float | None
