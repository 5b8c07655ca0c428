"""Long-term memories, their history, and recall."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from service.domain.ranking import RankingParams
from service.schemas.common import ClientId, Metadata, RecordModel, RequestModel
from service.schemas.validators import (
    HttpUrl,
    MetadataFilter,
    MetadataIn,
    NonBlank,
    SafeStr,
    UtcDatetime,
    check_window,
    in_future,
    one_shape,
)

MemoryType = Literal["semantic", "episodic", "procedural", "summary", "profile"]
Modality = Literal["text", "image", "audio"]

#: Keywords of one memory, and characters in each.
MAX_KEYWORDS, KEYWORD_MAX_CHARS = 32, 100
MAX_QUERY_CHARS = 4000

Content = Annotated[
    NonBlank,
    Field(description="The memory, not blank (limit: MEMORY_MAX_CONTENT_CHARS characters, default 32000); "
          "for image or audio, its description or transcript."),
]
Topic = Annotated[SafeStr, StringConstraints(min_length=1, max_length=128)]
Keywords = Annotated[
    list[Annotated[SafeStr, StringConstraints(min_length=1, max_length=KEYWORD_MAX_CHARS)]],
    Field(max_length=MAX_KEYWORDS, description=f"At most {MAX_KEYWORDS} keywords of {KEYWORD_MAX_CHARS} characters."),
]
MediaUrl = Annotated[HttpUrl, Field(description="An http or https URL of the image or audio.")]
Expiry = Annotated[UtcDatetime, AfterValidator(in_future)]


class MemoryCreate(RequestModel):
    user_id: ClientId
    content: Content
    type: MemoryType = Field("semantic", description="semantic: facts, preferences; episodic: events; procedural: how-tos.")
    session_id: ClientId | None = Field(None, description="A session of yours that exists.")
    agent_id: ClientId | None = None
    modality: Modality = "text"
    media_url: MediaUrl | None = None
    importance: float = Field(0.5, ge=0.0, le=1.0)
    topic: Topic | None = None
    keywords: Keywords | None = Field(None, description="Extracted from the content when absent.")
    metadata: MetadataIn = Field(default_factory=dict)
    event_time: UtcDatetime | None = Field(None, description="When it happened (ISO-8601); creation time when absent.")
    expires_at: Expiry | None = Field(
        None, description="A future time (ISO-8601) after which the memory is never returned and is purged."
    )
    source_ids: list[Annotated[SafeStr, StringConstraints(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=1000, description="Ids of the messages it came from."
    )


class MemoryBatch(RequestModel):
    memories: list[MemoryCreate] = Field(
        min_length=1, description="One or more memories (limit: MEMORY_MAX_BATCH_ITEMS, default 100)."
    )


def _write_shape(body: Any) -> str | None:
    return ("batch" if "memories" in body else "one") if isinstance(body, dict) else None


#: The body of POST /v1/memories: one memory, or a batch when it has a ``memories`` key.
MemoryWrite = Annotated[
    MemoryCreate | MemoryBatch,
    one_shape({"one": MemoryCreate, "batch": MemoryBatch}, _write_shape, 'one memory or {"memories": [...]}'),
]


class MemoryUpdate(RequestModel):
    """Only the fields given change; ``expires_at: null`` removes an expiry, a past one expires it now."""

    content: Content | None = None
    type: MemoryType | None = None
    modality: Modality | None = None
    media_url: MediaUrl | None = None
    importance: float | None = Field(None, ge=0.0, le=1.0)
    topic: Topic | None = None
    keywords: Keywords | None = None
    metadata: MetadataIn | None = None
    event_time: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None


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
    status: Literal["created", "duplicate", "merged", "updated"] = Field(
        description=(
            "duplicate: identical content was already kept; merged: folded into a near-identical memory that "
            "already says the same; updated: a near-identical memory took this text as its new version "
            "(it states a new number, date, name or negation; the old text stays in its history)."
        )
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


_DEFAULT = RankingParams()  # the one source of the tuned defaults


class SearchWeights(RequestModel):
    """How much each score part counts; the defaults are the tuned recipe (see the README)."""

    semantic: float = Field(_DEFAULT.semantic_weight, ge=0.0, le=10.0)
    keyword: float = Field(_DEFAULT.keyword_weight, ge=0.0, le=10.0)
    speaker: float = Field(
        _DEFAULT.speaker_weight, ge=0.0, le=10.0, description="Memories said by a person the query names."
    )
    date: float = Field(_DEFAULT.date_weight, ge=0.0, le=10.0, description="Memories from a date the query mentions.")
    context: float = Field(
        _DEFAULT.context_weight, ge=0.0, le=10.0, description="Memories whose neighbouring turns match the query."
    )
    recency: float = Field(_DEFAULT.recency_weight, ge=0.0, le=10.0, description="Newer event times.")
    recency_half_life_days: float = Field(_DEFAULT.recency_half_life_days, gt=0.0, le=36500.0)
    importance: float = Field(_DEFAULT.importance_weight, ge=0.0, le=10.0, description="The memory's importance.")

    def params(self) -> RankingParams:
        """These weights as the fusion's parameters (the rest keep their defaults)."""
        return replace(
            _DEFAULT,
            semantic_weight=self.semantic,
            keyword_weight=self.keyword,
            speaker_weight=self.speaker,
            date_weight=self.date,
            context_weight=self.context,
            recency_weight=self.recency,
            recency_half_life_days=self.recency_half_life_days,
            importance_weight=self.importance,
        )


class SearchRequest(RequestModel):
    query: NonBlank = Field(max_length=MAX_QUERY_CHARS, description="What to recall; not blank.")
    user_id: ClientId
    session_id: ClientId | None = None
    agent_id: ClientId | None = None
    types: list[MemoryType] | None = Field(None, max_length=16)
    topics: list[Topic] | None = Field(None, max_length=50)
    metadata: MetadataFilter | None = Field(
        None,
        description="Equality filters on top-level metadata keys (letters, digits, '_' and '-'; at most 32).",
    )
    after: UtcDatetime | None = Field(None, description="Only memories whose event time is at or after this.")
    before: UtcDatetime | None = Field(None, description="Only memories whose event time is before this.")
    limit: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    weights: SearchWeights = Field(default_factory=SearchWeights)
    mmr: float | None = Field(None, ge=0.0, le=1.0, description="MMR lambda for diversity (1 = pure relevance).")
    min_score: float | None = Field(None, description="Drop results scoring below this.")
    sources: list[Literal["memories", "documents"]] = Field(
        default_factory=lambda: ["memories"], min_length=1, max_length=2,
        description="What to search: the user's memories, and chunks of knowledge documents (the user's own "
        "and those of `namespaces`). Memory filters (session, agent, types, topics, metadata, after, before) "
        "apply to memories only.",
    )
    namespaces: list[ClientId] = Field(
        default_factory=list, max_length=32, description="Shared document namespaces this search may read."
    )

    @model_validator(mode="after")
    def _window(self) -> SearchRequest:
        check_window(self.after, self.before)
        return self


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
    """A search hit among the user's memories."""

    source: Literal["memory"] = "memory"
    memory: Memory
    score: float
    parts: ScoreParts


class DocumentHit(BaseModel):
    """A search hit in a knowledge document: one of its chunks."""

    source: Literal["document"] = "document"
    score: float
    parts: ScoreParts = Field(description="Document chunks score on the semantic and keyword parts only.")
    content: str
    document_id: str
    title: str
    chunk_index: int
    chunk_id: str
    heading: str = Field(description="The headings the chunk stands under ('' for none).")
    namespace: str | None = Field(description="The shared namespace it came from; null for the user's own.")


class SearchResults(BaseModel):
    items: list[Annotated[SearchHit | DocumentHit, Field(discriminator="source")]] = Field(
        description="Best first; memories and document chunks ranked together."
    )


class FailedJob(BaseModel):
    id: int
    kind: str
    subject: str = Field(description="What the job was about (a memory's id, a session's id...).")
    attempts: int
    error: str | None = Field(description="What its last attempt raised.")
    created_at: datetime


class QueueState(BaseModel):
    pending: int
    failed: int
    oldest_pending_age_seconds: float | None
    failures: list[FailedJob] = Field(default_factory=list, description="The newest parked jobs (at most 20).")
    pending_by_kind: dict[str, int] = Field(
        default_factory=dict, description="Pending jobs by kind (`sync_memory` and `sync_document`: waiting to be searchable)."
    )
    oldest_pending_age_seconds_by_kind: dict[str, float] = Field(
        default_factory=dict, description="Age of the oldest pending job of each kind."
    )
    indexing_lag_seconds: float | None = Field(
        None, description="Age of the oldest pending indexing job: how long a new memory has waited to be searchable."
    )
