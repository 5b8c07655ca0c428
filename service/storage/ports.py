"""Small protocols the domain talks to; storage/* implements them.

Each port is a handful of methods so that it is easy to implement twice (a server backend and
an embedded one) and to fake once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from service.storage.records import (
    ApiKeyRecord,
    Erased,
    FailedJob,
    BufferedMessage,
    ChunkRecord,
    DocumentQuery,
    DocumentRecord,
    Job,
    Mark,
    MemoryQuery,
    MemoryRecord,
    MemoryVersion,
    QueueStats,
    MessageQuery,
    MessageRecord,
    Page,
    ProfileRecord,
    SessionChanges,
    SessionDigest,
    SessionQuery,
    SessionRecord,
    SparseVector,
    StoredAnswer,
    TenantRecord,
    UserSummary,
    VectorHit,
    VectorPoint,
    VectorQuery,
)


class SessionRepo(Protocol):
    async def insert(self, session: SessionRecord) -> bool:
        """Store a new session; False when the id is already taken."""
        ...

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None: ...

    async def list(self, query: SessionQuery) -> Page[SessionRecord]: ...

    async def update(self, tenant_id: str, session_id: str, changes: SessionChanges) -> SessionRecord | None: ...

    async def delete(self, tenant_id: str, session_id: str) -> bool: ...

    async def count(self) -> int:
        """Sessions of every tenant (for the state gauges)."""
        ...


class MessageRepo(Protocol):
    async def insert_many(self, messages: Sequence[MessageRecord]) -> list[MessageRecord]:
        """Store messages (their ``seq`` is ignored) and return them with the assigned ``seq``."""
        ...

    async def list(self, query: MessageQuery) -> Page[MessageRecord]: ...

    async def recent(self, tenant_id: str, session_id: str, limit: int) -> list[MessageRecord]:
        """The newest ``limit`` messages of a session, oldest first."""
        ...

    async def after(self, tenant_id: str, session_id: str, mark: Mark | None, limit: int) -> list[MessageRecord]:
        """The oldest ``limit`` messages of a session that sort after ``mark`` (all when None), oldest first."""
        ...

    async def count(self) -> int:
        """Messages of every tenant (for the state gauges)."""
        ...


class MemoryRepo(Protocol):
    """Memories on the request path: write, read, find duplicates, list, recall's speakers."""

    async def insert_many(self, memories: Sequence[MemoryRecord]) -> None: ...

    async def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]: ...

    async def find_by_hash(self, tenant_id: str, user_id: str, type: str, hashes: Sequence[str]) -> list[MemoryRecord]: ...

    async def list(self, query: MemoryQuery) -> Page[MemoryRecord]: ...

    async def replace(self, memory: MemoryRecord) -> None:
        """Overwrite the stored memory with the same id."""
        ...

    async def delete_many(self, tenant_id: str, ids: Sequence[str]) -> None: ...

    async def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """The distinct speakers of a user's memories (the names a query may mention)."""
        ...



class VersionRepo(Protocol):
    """The history of memories: every created, updated, merged, deleted or expired version."""

    async def add(self, tenant_id: str, versions: Sequence[MemoryVersion]) -> None: ...

    async def history(self, tenant_id: str, memory_id: str) -> list[MemoryVersion]:
        """A memory's versions, oldest first (a deleted memory's too)."""
        ...


class MemoryUpkeepRepo(Protocol):
    """Memories of every tenant, for background upkeep: expiry purges, reindex, the gauges."""

    async def expired(self, now: datetime, limit: int) -> list[MemoryRecord]:
        """Memories whose expiry is at or before ``now``, soonest first."""
        ...

    async def scan(self, after_id: str, limit: int) -> list[MemoryRecord]:
        """Memories of every tenant by id, for rebuilding the vector index."""
        ...

    async def count_by_type(self) -> dict[str, int]: ...


class EpisodeRepo(Protocol):
    """Memories made from a session's messages, addressed by turn position."""

    async def last_position(self, tenant_id: str, session_id: str) -> int | None:
        """The highest turn position among a session's memories."""
        ...

    async def at_positions(self, tenant_id: str, positions: Sequence[tuple[str, int]]) -> list[MemoryRecord]:
        """The episodes at these ``(session_id, position)`` places (missing ones are left out)."""
        ...

    async def derived_from(self, tenant_id: str, session_id: str) -> list[MemoryRecord]:
        """The session's episodes and the summary memories condensed from them."""
        ...


class DigestRepo(Protocol):
    """Per session: the rolling summary and the progress of the digest steps."""

    async def get(self, tenant_id: str, session_id: str) -> SessionDigest | None: ...

    async def save(self, digest: SessionDigest) -> None: ...


class TermRepo(Protocol):
    """The keyword index: memories of a user under their (stemmed) topic and keyword terms."""

    async def add(self, tenant_id: str, user_id: str, memory_id: str, terms: Sequence[str]) -> None: ...

    async def lookup(self, tenant_id: str, user_id: str, terms: Sequence[str], limit: int) -> dict[str, int]:
        """Memory id -> how many of ``terms`` it is indexed under, most first."""
        ...

    async def delete(self, tenant_id: str, memory_ids: Sequence[str]) -> None: ...


class JobRepo(Protocol):
    """The transactional outbox. Jobs are claimed with a lease; a crashed claimer's lease runs out."""

    async def enqueue(self, tenant_id: str, kind: str, subjects: Sequence[str], *, coalesce: bool = False) -> list[int]:
        """Queue one job per subject; returns the new job ids. With ``coalesce`` (for jobs that
        redo a subject's work from scratch: a digest, a profile refresh) a subject that already
        has a ready job nobody has claimed yet gets no second one."""
        ...

    async def claim(
        self, now: datetime, lease_seconds: float, limit: int, owner: str, kinds: Sequence[str] | None = None
    ) -> list[Job]:
        """Lease up to ``limit`` ready jobs (of ``kinds``, or any) to ``owner`` (an attempt each), oldest first."""
        ...

    async def release(self, owner: str) -> int:
        """End ``owner``'s leases now (its process is known dead); returns how many jobs it held."""
        ...

    async def complete(self, ids: Sequence[int]) -> None: ...

    async def retry(self, job_id: int, error: str, available_at: datetime) -> None: ...

    async def fail(self, job_id: int, error: str) -> None: ...

    async def requeue(self, tenant_id: str, job_id: int, now: datetime) -> bool:
        """Make a tenant's parked job pending again with fresh attempts; False unless it was one."""
        ...

    async def failures(self, tenant_id: str, limit: int) -> list[FailedJob]:
        """A tenant's parked jobs, newest first."""
        ...

    async def stats(self, tenant_id: str | None = None) -> QueueStats:
        """Pending and failed jobs of one tenant, or of all."""
        ...


class TenantRepo(Protocol):
    async def insert(self, tenant: TenantRecord) -> bool:
        """Store a new tenant; False when the id is already taken."""
        ...

    async def get(self, tenant_id: str) -> TenantRecord | None: ...

    async def list(self, after: str | None, limit: int) -> list[TenantRecord]:
        """Tenants in id order, after ``after`` (exclusive)."""
        ...


class KeyRepo(Protocol):
    async def insert(self, key: ApiKeyRecord) -> None: ...

    async def by_hash(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key whose secret hashes to ``secret_hash``, revoked or not."""
        ...

    async def list(self, tenant_id: str | None, after: str | None, limit: int) -> list[ApiKeyRecord]:
        """Keys in id order (of one tenant, or all), after ``after`` (exclusive)."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        """Mark a key revoked (idempotent); None when there is no such key."""
        ...


class AnswerRepo(Protocol):
    """First answers to POSTs made with an ``Idempotency-Key``, per tenant and key."""

    async def claim(self, tenant_id: str, key: str, fingerprint: str, now: datetime, stale_before: datetime) -> StoredAnswer | None:
        """Start the key's request: None when this caller now owns it, else the record already there.

        A running record started before ``stale_before`` (its process died) is taken over.
        """
        ...

    async def finish(self, tenant_id: str, key: str, status: int, body: bytes, media_type: str | None) -> None: ...

    async def release(self, tenant_id: str, key: str) -> None:
        """Forget a running record (the request failed; a retry may run it again)."""
        ...

    async def purge(self, before: datetime) -> int: ...


class UserRepo(Protocol):
    """Users are derived: whoever has a session, memory, document or profile in the tenant."""

    async def get(self, tenant_id: str, user_id: str, alive_at: datetime | None = None) -> UserSummary | None:
        """The user's counts (memories alive at ``alive_at``, default now); None for nobody."""
        ...

    async def list(
        self, tenant_id: str, after: str | None, limit: int, alive_at: datetime | None = None
    ) -> list[UserSummary]:
        """Users in id order, after ``after`` (exclusive)."""
        ...


class ProfileRepo(Protocol):
    async def get(self, tenant_id: str, user_id: str, for_update: bool = False) -> ProfileRecord | None:
        """The profile; ``for_update`` locks it until the transaction ends (read-modify-write)."""
        ...

    async def save(self, profile: ProfileRecord) -> None:
        """Insert or overwrite the user's profile."""
        ...

    async def save_derived(
        self, tenant_id: str, user_id: str, facts: list[dict[str, Any]], topics: list[dict[str, Any]], at: datetime
    ) -> None:
        """Set only the derived parts (a profile with no fields is made when there is none)."""
        ...

    async def delete(self, tenant_id: str, user_id: str) -> bool: ...

    async def top_facts(
        self, tenant_id: str, user_id: str, types: Sequence[str], alive_at: datetime, limit: int
    ) -> list[MemoryRecord]:
        """The user's alive memories of these types, most important first, then most recent."""
        ...


class DocumentRepo(Protocol):
    async def insert(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None: ...

    async def get(self, tenant_id: str, document_id: str) -> DocumentRecord | None: ...

    async def list(self, query: DocumentQuery) -> Page[DocumentRecord]:
        """Documents newest first, of one user or namespace (or all)."""
        ...

    async def chunks(self, tenant_id: str, document_id: str, first: int = 0, limit: int | None = None) -> list[ChunkRecord]:
        """A document's chunks in order, from chunk index ``first`` (``limit`` of them; all when None)."""
        ...

    async def chunks_by_id(self, tenant_id: str, ids: Sequence[str]) -> list[ChunkRecord]: ...

    async def owns_any(self, tenant_id: str, user_id: str) -> bool:
        """Whether the user owns at least one document (search skips their documents when not)."""
        ...

    async def delete(self, tenant_id: str, document_id: str) -> bool:
        """Remove a document and its chunks; False when there was none."""
        ...

    async def scan(self, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
        """(tenant_id, id) of documents of every tenant in that order after ``after``, for reindexing."""
        ...


class UserDataRepo(Protocol):
    """A user's records as a whole (governance): export pages, idempotent restore, erasure."""

    async def sessions(self, tenant_id: str, user_id: str) -> list[SessionRecord]: ...

    async def memories(self, tenant_id: str, user_id: str, after_id: str | None, limit: int) -> list[MemoryRecord]:
        """Every memory of the user (expired ones too), in id order after ``after_id``."""
        ...

    async def versions(
        self, tenant_id: str, user_id: str, after: tuple[str, int] | None, limit: int
    ) -> list[MemoryVersion]:
        """Every version of the user's memories (deleted ones' too), by (memory id, version)."""
        ...

    async def restore_sessions(self, sessions: Sequence[SessionRecord]) -> int:
        """Insert those not there yet; how many were new."""
        ...

    async def restore_messages(self, messages: Sequence[MessageRecord]) -> int: ...

    async def restore_memories(self, memories: Sequence[MemoryRecord]) -> list[str]:
        """Insert those not there yet; the new ones' ids."""
        ...

    async def restore_versions(self, tenant_id: str, user_id: str, versions: Sequence[MemoryVersion]) -> int: ...

    async def erase(self, tenant_id: str, user_id: str) -> Erased:
        """Delete every SQL row of the user; what went, for the derived stores to follow."""
        ...


class RetentionRepo(Protocol):
    """The retention policy's SQL: purge records older than a cut-off, oldest first, in batches."""

    async def purge_messages(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete messages created before ``before``; each one's (tenant, session)."""
        ...

    async def purge_memories(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete memories created before ``before`` with their history; their (tenant, id)."""
        ...


class Repos(Protocol):
    """The stores bound to one database transaction."""

    @property
    def sessions(self) -> SessionRepo: ...

    @property
    def messages(self) -> MessageRepo: ...

    @property
    def memories(self) -> MemoryRepo: ...

    @property
    def versions(self) -> VersionRepo: ...

    @property
    def upkeep(self) -> MemoryUpkeepRepo: ...

    @property
    def jobs(self) -> JobRepo: ...

    @property
    def episodes(self) -> EpisodeRepo: ...

    @property
    def digests(self) -> DigestRepo: ...

    @property
    def terms(self) -> TermRepo: ...

    @property
    def tenants(self) -> TenantRepo: ...

    @property
    def keys(self) -> KeyRepo: ...

    @property
    def answers(self) -> AnswerRepo: ...

    @property
    def users(self) -> UserRepo: ...

    @property
    def profiles(self) -> ProfileRepo: ...

    @property
    def documents(self) -> DocumentRepo: ...

    @property
    def userdata(self) -> UserDataRepo: ...

    @property
    def retention(self) -> RetentionRepo: ...


class Database(Protocol):
    """The SQL source of truth. ``transaction()`` commits on clean exit and rolls back on error."""

    def transaction(self) -> AbstractAsyncContextManager[Repos]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MessageBuffer(Protocol):
    """The short-term buffer: a capped, expiring list of recent messages per session.

    It is a cache of the episodic record in SQL, filled on read (cache-aside). A reader that
    finds no buffer calls ``begin_fill``, reads SQL, then ``install``s the snapshot with its
    token; an ``append`` that finds no buffer cancels fills in progress, so a snapshot older
    than an acknowledged write is never kept. ``recent`` drops repeated ids (a write that
    landed in both a snapshot and an append).
    """

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None: ...

    async def begin_fill(self, key: str) -> str:
        """Claim the right to fill a missing buffer; returns the token ``install`` needs."""
        ...

    async def install(self, key: str, token: str, messages: Sequence[BufferedMessage]) -> bool:
        """Fill a missing buffer from a SQL snapshot; False (nothing kept) if a write cancelled the fill."""
        ...

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        """The newest ``limit`` messages, oldest first; None when the buffer does not exist."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class VectorIndex(Protocol):
    """Dense and sparse vectors of memories, with payload filters evaluated in the engine."""

    async def ensure(self) -> None:
        """Create the collection and its payload indexes if they are missing."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        """Best hits first. Dense: cosine similarity. Sparse: BM25 (IDF applied by the engine)."""
        ...

    async def count(self, tenant_id: str) -> int: ...

    async def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete every point of one user of a tenant (memories and the user's document chunks)."""
        ...

    async def delete_document(self, tenant_id: str, document_id: str) -> None:
        """Delete every chunk point of one document."""
        ...

    async def reset(self) -> None:
        """Drop every point and recreate the empty collection (used by reindex)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class Embedder(Protocol):
    """Text to dense vectors (unit length, so dot product equals cosine)."""

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, texts: Sequence[str]) -> list[list[float]]:
        """Like ``embed``, for a search waiting on the answer: served ahead of indexing work."""
        ...

    async def close(self) -> None: ...


class SparseEncoder(Protocol):
    """Text to BM25-style sparse vectors: documents carry saturated term frequencies, queries
    carry unit weights; the vector engine multiplies by IDF."""

    def encode_document(self, text: str) -> SparseVector: ...

    def encode_query(self, text: str) -> SparseVector: ...


class RateCounter(Protocol):
    """Counts hits per bucket in fixed windows, shared by every process that shares the backend."""

    async def hit(self, bucket: str, window: int) -> int:
        """Count one hit in ``bucket``'s current window of ``window`` seconds; the count so far."""
        ...

    async def close(self) -> None: ...


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...
