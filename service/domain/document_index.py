"""Keeping the vector index in step with the knowledge documents in SQL.

One outbox job kind, ``sync_document``, makes the index agree with a document's rows: a document
that exists has its chunks embedded and upserted (in batches, so a long document never asks the
model for everything at once); one that is gone has its chunk points deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from service.storage.ports import Database, Embedder, SparseEncoder, VectorIndex
from service.storage.records import ChunkRecord, DocumentRecord, VectorPoint

#: The outbox job kind: make the vector index agree with the document's rows.
SYNC_DOCUMENT = "sync_document"
#: Chunks embedded and written per step.
EMBED_BATCH = 64


#: The ``source`` of a chunk's point (memory points have none).
DOCUMENT_SOURCE = "document"


#: The payload key :func:`is_chunk` reads.
SOURCE_FIELD = "source"


def is_chunk(payload: Mapping[str, Any]) -> bool:
    """Whether a vector point's payload is a document chunk's (else it is a memory's)."""
    return payload.get(SOURCE_FIELD) == DOCUMENT_SOURCE


@dataclass(frozen=True, slots=True)
class ChunkPayload:
    """What a chunk's vector point carries: the fields document searches filter on, and
    ``source: "document"``, which keeps chunks out of memory searches (``VectorFilter.source``)."""

    tenant_id: str
    document_id: str
    chunk_index: int
    user_id: str | None
    namespace: str | None
    source: str = DOCUMENT_SOURCE

    @classmethod
    def of(cls, document: DocumentRecord, chunk: ChunkRecord) -> ChunkPayload:
        return cls(document.tenant_id, document.id, chunk.chunk_index, document.user_id, document.namespace)

    def as_payload(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def index_text(document: DocumentRecord, chunk: ChunkRecord) -> str:
    """What a chunk is embedded and BM25-encoded as: its title and headings, then its text, so a
    chunk deep in a section still matches a query about the document's subject."""
    path = dict.fromkeys(p for p in (document.title, *chunk.heading.split(" > ")) if p)  # a heading may repeat the title
    return f"{' > '.join(path)}\n{chunk.content}"


class ChunkIndexer:
    def __init__(self, db: Database, embedder: Embedder, sparse: SparseEncoder, vectors: VectorIndex) -> None:
        self._db = db
        self._embedder = embedder
        self._sparse = sparse
        self._vectors = vectors

    async def sync(self, tenant_id: str, document_ids: Sequence[str]) -> None:
        """Make the index agree with SQL for these documents (the ``sync_document`` handler)."""
        for document_id in dict.fromkeys(document_ids):
            await self._sync_one(tenant_id, document_id)

    async def _sync_one(self, tenant_id: str, document_id: str) -> None:
        async with self._db.transaction() as repos:
            document = await repos.documents.get(tenant_id, document_id)
        if document is None:
            await self._vectors.delete_document(tenant_id, document_id)
            return
        first = 0
        while True:
            async with self._db.transaction() as repos:
                chunks = await repos.documents.chunks(tenant_id, document_id, first, EMBED_BATCH)
            if not chunks:
                return
            await self.upsert(document, chunks)
            first = chunks[-1].chunk_index + 1

    async def upsert(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None:
        texts = [index_text(document, c) for c in chunks]
        dense = await self._embedder.embed(texts)
        points = [
            VectorPoint(
                id=c.id,
                dense=list(v),
                sparse=self._sparse.encode_document(t),
                payload=ChunkPayload.of(document, c).as_payload(),
            )
            for c, t, v in zip(chunks, texts, dense, strict=True)
        ]
        await self._vectors.upsert(points)

    async def reindex(self, after: tuple[str, str] | None, limit: int) -> tuple[int, tuple[str, str] | None]:
        """Index one page of every tenant's documents (``memory-service reindex``): how many, and
        where the next page starts (None at the end)."""
        async with self._db.transaction() as repos:
            page = await repos.documents.scan(after, limit)
        for tenant_id, document_id in page:
            await self._sync_one(tenant_id, document_id)
        return len(page), (page[-1] if len(page) == limit else None)
