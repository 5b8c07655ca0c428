"""SQLAlchemy tables: the source of truth. Every table carries ``tenant_id``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, LargeBinary, Select, String, Text, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.storage.sql.types import BigSerial, JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonDoc}


class SessionRow(Base):
    __tablename__ = "sessions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(128))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_sessions_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_sessions_tenant_user_created", "tenant_id", "user_id", "created_at", "id"),
    )


class MessageRow(Base):
    __tablename__ = "messages"

    seq: Mapped[int] = mapped_column(BigSerial, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(128))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    created_at: Mapped[datetime]
    token_count: Mapped[int]

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
        Index("ix_messages_session_created", "tenant_id", "session_id", "created_at", "seq"),
    )


class MemoryRow(Base):
    __tablename__ = "memories"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    modality: Mapped[str] = mapped_column(String(8))
    media_url: Mapped[str | None] = mapped_column(String(2048))
    importance: Mapped[float]
    topic: Mapped[str | None] = mapped_column(String(128))
    keywords: Mapped[list[str]] = mapped_column(JsonDoc)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    speaker: Mapped[str | None] = mapped_column(String(128))
    event_time: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    source_ids: Mapped[list[str]] = mapped_column(JsonDoc)
    position: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_memories_user_created", "tenant_id", "user_id", "created_at", "id"),
        Index("ix_memories_dedup", "tenant_id", "user_id", "type", "content_hash"),
        Index("ix_memories_session", "tenant_id", "session_id", "position"),
        Index("ix_memories_speakers", "tenant_id", "user_id", "speaker"),
        Index("ix_memories_expires", "expires_at"),
    )


class MemoryVersionRow(Base):
    """Every change of a memory, kept after the memory itself is deleted (the tombstone is the last)."""

    __tablename__ = "memory_versions"

    id: Mapped[int] = mapped_column(BigSerial, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    memory_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int]
    op: Mapped[str] = mapped_column(String(16))
    changes: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    at: Mapped[datetime]

    __table_args__ = (
        Index("ix_memory_versions_memory", "tenant_id", "memory_id", "version"),
        Index("ix_memory_versions_user", "tenant_id", "user_id"),
    )


class JobRow(Base):
    """The transactional outbox: work written in the same transaction as the data it is about."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigSerial, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int]
    available_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_jobs_ready", "status", "available_at", "id"),
        Index("ix_jobs_subject", "tenant_id", "kind", "subject"),  # coalescing enqueues
    )


class SessionDigestRow(Base):
    """Per session: the rolling summary and how far summarizing, condensing and extracting got."""

    __tablename__ = "session_digests"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    summary: Mapped[str] = mapped_column(Text)
    summary_tokens: Mapped[int]
    summary_at: Mapped[datetime | None]
    summarized_count: Mapped[int]
    summarized_at: Mapped[datetime | None]
    summarized_seq: Mapped[int | None] = mapped_column(BigInteger)
    condensed_count: Mapped[int]
    condensed_at: Mapped[datetime | None]
    condensed_seq: Mapped[int | None] = mapped_column(BigInteger)
    extracted_count: Mapped[int]
    extracted_at: Mapped[datetime | None]
    extracted_seq: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
    )


class MemoryTermRow(Base):
    """The keyword index: a topic or keyword term (stemmed) of a user's memory."""

    __tablename__ = "memory_terms"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    memory_id: Mapped[str] = mapped_column(String(36), primary_key=True)

    __table_args__ = (Index("ix_memory_terms_memory", "tenant_id", "memory_id"),)


class TenantRow(Base):
    """A tenant: the boundary of every record; API keys are bound to one."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key: the SHA-256 of its secret (never the secret), its tenant and role."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_keys_tenant", "tenant_id", "id"),)


class IdempotentAnswerRow(Base):
    """The first answer to a POST made with an ``Idempotency-Key`` (status NULL while it runs)."""

    __tablename__ = "idempotent_answers"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_idempotent_answers_created", "created_at"),)


class UserProfileRow(Base):
    """A user's profile: fields the client sets, and facts and topics derived from their memories."""

    __tablename__ = "user_profiles"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    facts: Mapped[list[Any]] = mapped_column(JsonDoc)
    topics: Mapped[list[Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    derived_at: Mapped[datetime | None]


class DocumentRow(Base):
    """A knowledge document of a user (``user_id``) or shared in a ``namespace``."""

    __tablename__ = "documents"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(128))
    namespace: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    chunk_tokens: Mapped[int]
    overlap_tokens: Mapped[int]
    chunk_count: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_documents_user_created", "tenant_id", "user_id", "created_at", "id"),
        Index("ix_documents_namespace_created", "tenant_id", "namespace", "created_at", "id"),
    )


class DocumentChunkRow(Base):
    """One chunk of a document, as indexed (its id is its vector point's id)."""

    __tablename__ = "document_chunks"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36))
    chunk_index: Mapped[int]
    content: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int]
    start_char: Mapped[int]
    heading: Mapped[str] = mapped_column(Text)  # the heading path it stands under ("Install > Linux")

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"
        ),
        Index("ix_document_chunks_document", "tenant_id", "document_id", "chunk_index", unique=True),
    )


class _Tenanted(Protocol):
    tenant_id: str


Owned = TypeVar("Owned", bound=_Tenanted)


def owned_by(tenant_id: str, rows: Sequence[Owned]) -> list[Owned]:
    """The rows of one tenant among rows read by primary key.

    Reads by id ask for the id alone and check the tenant here: with ``tenant_id = ? AND id IN
    (...)`` SQLite's planner (without statistics, or with sampled ones) walked the tenant's
    index instead of the primary key, 713 ms at 1,000,000 memories in one tenant against 1 ms."""
    return [r for r in rows if r.tenant_id == tenant_id]


def select_plain(entity: type[Base]) -> Select[Any]:
    """A Core select of an entity's columns, each labelled with its attribute's name, so that its
    rows read like the entity's objects (``row.metadata_``) without the ORM's loading.

    Hot reads use it: building ORM objects (identity map, instance state) for rows that are only
    copied into records was a fifth of a context call's CPU. (Sessions do not autoflush, so an
    ORM query and a Core one see the same rows.)"""
    return select(*(prop.columns[0].label(prop.key) for prop in inspect(entity).column_attrs))



# The tables' columns, for the WHERE and ORDER BY of Core reads: an ORM attribute there (``MemoryRow.id``)
# turns the whole statement into an ORM one, loaded through the ORM again.
SESSION_COLUMNS = SessionRow.__table__.c
MESSAGE_COLUMNS = MessageRow.__table__.c
MEMORY_COLUMNS = MemoryRow.__table__.c
DIGEST_COLUMNS = SessionDigestRow.__table__.c
PROFILE_COLUMNS = UserProfileRow.__table__.c
