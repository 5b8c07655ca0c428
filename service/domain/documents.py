"""Knowledge documents (the RAG knowledge base): chunked on write, indexed through the outbox.

A document belongs to one user of the tenant, or to a namespace that any user's search may be
given read access to. Its content is split by ``service.digest.chunking`` into chunks of at most
``chunk_tokens`` tokens with ``overlap_tokens`` of overlap; the document, its chunks and the
``sync_document`` job that puts them in the vector index commit in one transaction, so the
answer to a write means it is durable and will be searchable once the job has run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.digest.chunking import Chunk, chunk_text
from service.domain.clock import now
from service.domain.document_index import SYNC_DOCUMENT
from service.domain.errors import InvalidInput, LimitExceeded, NotFound, checked_cursor
from service.storage.ports import Database, Repos, TokenCounter
from service.storage.records import ChunkRecord, DocumentQuery, DocumentRecord, Page


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_chars: int
    chunk_tokens: int
    overlap_tokens: int


@dataclass(frozen=True, slots=True)
class NewDocument:
    title: str
    content: str
    user_id: str | None = None
    namespace: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None
    #: Kept as given by an import; a new id otherwise.
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChunkPage:
    items: list[ChunkRecord]
    next_cursor: str | None


#: Chunk ids are UUIDs (vector engines key points by UUID) derived from the document and position,
#: so chunking the same document again gives the same ids.
_CHUNK_IDS = uuid.UUID("6f1d3c2a-5b7e-4d0c-9a8f-2e4b6c8d0a1f")


def chunk_id(tenant_id: str, document_id: str, index: int) -> str:
    return str(uuid.uuid5(_CHUNK_IDS, f"{tenant_id}\x1f{document_id}\x1f{index}"))


def chunk_records(tenant_id: str, document_id: str, chunks: list[Chunk]) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            tenant_id=tenant_id,
            id=chunk_id(tenant_id, document_id, i),
            document_id=document_id,
            chunk_index=i,
            content=c.text,
            tokens=c.tokens,
            start_char=c.start,
            heading=" > ".join(c.headings),
        )
        for i, c in enumerate(chunks)
    ]


def parse_chunk_cursor(cursor: str | None) -> int:
    """The chunk index a chunk listing resumes at (its cursor is that index)."""
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise InvalidInput("cursor is not valid")
    return int(cursor)


class DocumentService:
    def __init__(
        self, db: Database, tokens: TokenCounter, limits: DocumentLimits, wake: Callable[[], None] = lambda: None
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._limits = limits
        self._wake = wake

    def _sizes(self, new: NewDocument) -> tuple[int, int]:
        size = new.chunk_tokens or self._limits.chunk_tokens
        overlap = new.overlap_tokens if new.overlap_tokens is not None else min(self._limits.overlap_tokens, size // 2)
        if overlap >= size:
            raise InvalidInput(f"overlap_tokens ({overlap}) must be less than chunk_tokens ({size})")
        return size, overlap

    async def _prepare(self, tenant_id: str, new: NewDocument) -> tuple[DocumentRecord, list[ChunkRecord]]:
        """The document's record and chunks (chunking is CPU work: it runs off the event loop)."""
        if (new.user_id is None) == (new.namespace is None):
            raise InvalidInput("give exactly one of user_id (a user's own document) or namespace (a shared one)")
        if len(new.content) > self._limits.max_chars:
            raise LimitExceeded(
                f"content has {len(new.content)} characters; the limit is {self._limits.max_chars} "
                "(MEMORY_MAX_DOCUMENT_CHARS)"
            )
        size, overlap = self._sizes(new)
        chunks = await asyncio.to_thread(chunk_text, new.content, self._tokens.count, size, overlap)
        document_id = new.id or str(uuid.uuid4())
        at = now()
        record = DocumentRecord(
            tenant_id=tenant_id,
            id=document_id,
            user_id=new.user_id,
            namespace=new.namespace,
            title=new.title,
            content=new.content,
            metadata=dict(new.metadata),
            chunk_tokens=size,
            overlap_tokens=overlap,
            chunk_count=len(chunks),
            created_at=new.created_at or at,
            updated_at=new.updated_at or at,
        )
        return record, chunk_records(tenant_id, document_id, chunks)

    @staticmethod
    async def _keep(repos: Repos, record: DocumentRecord, chunks: list[ChunkRecord]) -> None:
        await repos.documents.insert(record, chunks)
        await repos.jobs.enqueue(record.tenant_id, SYNC_DOCUMENT, [record.id])

    async def add(self, tenant_id: str, new: NewDocument) -> DocumentRecord:
        """Store a document and its chunks, and queue their indexing, in one transaction."""
        record, chunks = await self._prepare(tenant_id, new)
        async with self._db.transaction() as repos:
            await self._keep(repos, record, chunks)
        self._wake()
        return record

    async def restore(self, tenant_id: str, new: NewDocument) -> bool:
        """Keep an imported document under its own id unless that id is there already; True if new."""
        if new.id is None:
            raise InvalidInput("an imported document needs its id")
        async with self._db.transaction() as repos:
            if await repos.documents.get(tenant_id, new.id) is not None:
                return False
        record, chunks = await self._prepare(tenant_id, new)
        async with self._db.transaction() as repos:
            if await repos.documents.get(tenant_id, new.id) is not None:
                return False
            await self._keep(repos, record, chunks)
        self._wake()
        return True

    async def get(self, tenant_id: str, document_id: str) -> DocumentRecord:
        async with self._db.transaction() as repos:
            found = await repos.documents.get(tenant_id, document_id)
        if found is None:
            raise NotFound(f"document {document_id!r} not found")
        return found

    async def list(self, query: DocumentQuery) -> Page[DocumentRecord]:
        with checked_cursor():
            async with self._db.transaction() as repos:
                return await repos.documents.list(query)

    async def chunks(self, tenant_id: str, document_id: str, cursor: str | None, limit: int) -> ChunkPage:
        """A document's chunks in order; the cursor is the index of the next chunk."""
        first = parse_chunk_cursor(cursor)
        async with self._db.transaction() as repos:
            if await repos.documents.get(tenant_id, document_id) is None:
                raise NotFound(f"document {document_id!r} not found")
            found = await repos.documents.chunks(tenant_id, document_id, first, limit + 1)
        items = found[:limit]
        return ChunkPage(items, str(items[-1].chunk_index + 1) if len(found) > limit else None)

    async def delete(self, tenant_id: str, document_id: str) -> None:
        """Remove the document and its chunks from SQL, and queue their points' removal."""
        async with self._db.transaction() as repos:
            if not await repos.documents.delete(tenant_id, document_id):
                raise NotFound(f"document {document_id!r} not found")
            await repos.jobs.enqueue(tenant_id, SYNC_DOCUMENT, [document_id])
        self._wake()
