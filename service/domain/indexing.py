"""Turning memories into vector points, and keeping the vector index in step with SQL."""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.domain.clock import now
from service.storage.ports import Database, Embedder, SparseEncoder, VectorIndex
from service.storage.records import MemoryRecord, VectorPoint

#: The outbox job kind: make the vector index agree with the memory's row (upsert or delete).
SYNC_MEMORY = "sync_memory"


def payload(memory: MemoryRecord) -> dict[str, object]:
    """The fields searches filter and rank on, as the vector engine stores them. A field without a
    value is left out rather than stored as null (the engines' ``is_empty`` condition, which the
    expiry filter uses, matches both, and readers ``get`` every field): each stored field costs
    the Edge binding about 5 us a point to convert, a fifth of a bulk import's vector write."""
    fields = {
        "tenant_id": memory.tenant_id,
        "user_id": memory.user_id,
        "session_id": memory.session_id,
        "agent_id": memory.agent_id,
        "type": memory.type,
        "topic": memory.topic,
        "event_time": memory.event_time.timestamp(),
        "expires_at": memory.expires_at.timestamp() if memory.expires_at else None,
        "importance": memory.importance,
        "speaker": memory.speaker,
        "seq": memory.position,
        "metadata": {k: v for k, v in memory.metadata.items() if filterable(v)},
    }
    return {k: v for k, v in fields.items() if v is not None and v != {}}


def filterable(value: object) -> bool:
    """A metadata value the engines can store and filter on: a string, bool, int or finite float
    (Qdrant refuses NaN and infinities, which would fail the whole upsert)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


class Indexer:
    """Embeds memories (dense and BM25 sparse) and writes them to the vector index."""

    def __init__(self, db: Database, embedder: Embedder, sparse: SparseEncoder, vectors: VectorIndex) -> None:
        self._db = db
        self._embedder = embedder
        self._sparse = sparse
        self._vectors = vectors

    @staticmethod
    def text(memory: MemoryRecord) -> str:
        """What is embedded and BM25-encoded: the content alone (who spoke and the neighbouring
        turns count at query time, through the payload: ``service.domain.ranking``)."""
        return Indexer.text_of(memory.content)

    @staticmethod
    def text_of(content: str) -> str:
        return content.strip()

    async def upsert(self, memories: Sequence[MemoryRecord], dense: Sequence[list[float]] | None = None) -> None:
        """Write these memories' points; ``dense`` saves re-embedding when the caller has vectors."""
        if not memories:
            return
        texts = [self.text(m) for m in memories]
        vectors = dense or await self._embedder.embed(texts)
        points = [
            VectorPoint(id=m.id, dense=list(v), sparse=self._sparse.encode_document(t), payload=payload(m))
            for m, t, v in zip(memories, texts, vectors, strict=True)
        ]
        await self._vectors.upsert(points)

    async def sync(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Make the index agree with SQL for these ids: alive rows are upserted, the rest removed."""
        at = now()
        async with self._db.transaction() as repos:
            rows = await repos.memories.get_many(tenant_id, list(dict.fromkeys(ids)))
        alive = [m for m in rows if m.expires_at is None or m.expires_at > at]
        gone = set(ids) - {m.id for m in alive}
        if gone:
            await self._vectors.delete(sorted(gone))
        await self.upsert(alive)
