"""Plain records that cross the storage ports. No behaviour, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")


def field_values(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, sharing the values (``dataclasses.asdict`` deep-copies every
    list and dict, which on a bulk write cost more than building the SQL rows)."""
    names, values = _reader(type(record))
    return dict(zip(names, values(record), strict=True))


@cache
def field_names(kind: type) -> tuple[str, ...]:
    """A dataclass's field names in order (``dataclasses.fields`` builds them anew on every call:
    three calls a memory were a tenth of a bulk import's SQL stage)."""
    return tuple(f.name for f in fields(kind))


@cache
def _reader(kind: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """A dataclass's field names and one getter of all their values (one C call, where a getattr
    a field was a fifth of a bulk import's row building)."""
    names = field_names(kind)
    getter = attrgetter(*names)
    return names, (getter if len(names) > 1 else lambda record: (getter(record),))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    tenant_id: str
    id: str
    user_id: str
    agent_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageRecord:
    tenant_id: str
    session_id: str
    id: str
    seq: int
    role: str
    content: str
    name: str | None
    metadata: dict[str, Any]
    created_at: datetime
    token_count: int


@dataclass(frozen=True, slots=True)
class BufferedMessage:
    """A message as the short-term buffer holds it (a compact copy of the episodic record)."""

    id: str
    seq: int
    role: str
    content: str
    name: str | None
    created_at: datetime
    token_count: int


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: parallel lists of term ids and weights (BM25 term-frequency part)."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """One memory, or one chunk of a knowledge document, as the vector index holds it.

    ``payload`` carries the fields searches filter on: tenant_id, user_id, session_id,
    agent_id, type, topic, event_time (epoch seconds, float), expires_at (epoch seconds or
    None), metadata (flat dict). A chunk's payload has ``source: "document"``, document_id,
    chunk_index, title, heading, user_id or namespace instead.
    """

    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Conditions applied inside the vector engine. ``None`` means no condition."""

    tenant_id: str
    user_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    types: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    metadata: dict[str, str | int | float | bool] | None = None
    after: float | None = None  # event_time >= after (epoch seconds)
    before: float | None = None  # event_time < before (epoch seconds)
    alive_at: float | None = None  # expires_at is null or > alive_at (epoch seconds)
    #: "memory": memory points only (those without ``source: "document"``); "document": chunks
    #: of knowledge documents, of ``user_id`` or shared in one of ``namespaces``.
    source: Literal["memory", "document"] = "memory"
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VectorQuery:
    """One search: a dense or a sparse query vector, a filter and a limit."""

    filter: VectorFilter
    limit: int
    dense: list[float] | None = None
    sparse: SparseVector | None = None
    #: The payload keys the hits carry (None: the whole payload). Each key costs the engine a
    #: read and a conversion for every hit: a search ranks hundreds of them.
    payload_fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """A partial update of a session; ``None`` leaves a field as it is."""

    user_id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SessionQuery:
    tenant_id: str
    limit: int
    user_id: str | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MessageQuery:
    tenant_id: str
    session_id: str
    limit: int
    newest_first: bool = False
    after: datetime | None = None  # created_at >= after
    before: datetime | None = None  # created_at < before
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    tenant_id: str
    id: str
    user_id: str
    session_id: str | None
    agent_id: str | None
    type: str
    content: str
    modality: str
    media_url: str | None
    importance: float
    topic: str | None
    keywords: list[str]
    metadata: dict[str, Any]
    speaker: str | None
    event_time: datetime
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    source_ids: list[str]
    position: int | None
    version: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class MemoryQuery:
    tenant_id: str
    limit: int
    alive_at: datetime
    user_id: str | None = None
    session_id: str | None = None
    types: tuple[str, ...] | None = None
    topic: str | None = None
    after: datetime | None = None  # event_time >= after
    before: datetime | None = None  # event_time < before
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MemoryVersion:
    memory_id: str
    version: int
    op: str  # created | updated | merged | deleted | expired
    changes: dict[str, Any]
    snapshot: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    tenant_id: str
    kind: str
    subject: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job parked after its last attempt, with the error it last raised."""

    id: int
    kind: str
    subject: str
    attempts: int
    error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int
    failed: int
    oldest_pending: datetime | None
    pending_by_kind: dict[str, int] = field(default_factory=dict)
    oldest_by_kind: dict[str, datetime] = field(default_factory=dict)  # of the pending jobs


@dataclass(frozen=True, slots=True)
class Mark:
    """A place in a session's message order (messages sort by created_at, then seq)."""

    at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class Progress:
    """How many of a session's messages one digest step has taken in, up to which message."""

    count: int = 0
    until: Mark | None = None


@dataclass(frozen=True, slots=True)
class SessionDigest:
    """A session's rolling summary and the progress of its background digest steps."""

    tenant_id: str
    session_id: str
    summary: str = ""
    summary_tokens: int = 0
    summary_at: datetime | None = None  # when the rolling summary last changed
    summarized: Progress = Progress()
    condensed: Progress = Progress()
    extracted: Progress = Progress()
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: only the SHA-256 of its secret, never the secret itself."""

    id: str
    tenant_id: str
    role: str
    name: str | None
    secret_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first answer to a POST made with an ``Idempotency-Key`` (``status`` None while it runs)."""

    fingerprint: str
    status: int | None
    body: bytes
    media_type: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user of a tenant (whoever has a session, memory, document or profile there) and their counts."""

    tenant_id: str
    id: str
    session_count: int
    message_count: int
    memory_count: int
    document_count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """``fields`` are the client's (JSON merge patch); ``facts`` and ``topics`` are derived."""

    tenant_id: str
    user_id: str
    fields: dict[str, Any]
    facts: list[dict[str, Any]]
    topics: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    derived_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    tenant_id: str
    id: str
    user_id: str | None
    namespace: str | None
    title: str
    content: str
    metadata: dict[str, Any]
    chunk_tokens: int
    overlap_tokens: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    tenant_id: str
    id: str
    document_id: str
    chunk_index: int
    content: str
    tokens: int
    start_char: int
    heading: str = ""  # the path of headings it stands under, "Install > On Linux"


@dataclass(frozen=True, slots=True)
class DocumentQuery:
    tenant_id: str
    limit: int
    user_id: str | None = None
    namespace: str | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Erased:
    """What erasing a user removed from SQL (ids for the derived stores to follow)."""

    session_ids: list[str]
    messages: int
    memory_ids: list[str]
    versions: int
    documents: int
    chunk_ids: list[str]
    profile: bool
