"""Recall: hybrid search over a user's memories, with the score parts that explain each rank."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from service.domain import query_plan, ranking
from service.domain.clock import now
from service.domain.document_index import SOURCE_FIELD, is_chunk
from service.domain.indexing import payload
from service.domain.memories import alive
from service.embedding.text import term_set
from service.observability.metrics import Metrics
from service.storage.ports import Database, Embedder, SparseEncoder, VectorIndex
from service.storage.records import (
    ChunkRecord,
    DocumentRecord,
    MemoryRecord,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorQuery,
    field_values,
)

Mode = Literal["hybrid", "semantic", "keyword"]
Source = Literal["memories", "documents"]

#: Memories the keyword index may add to one search's candidates.
INDEXED_CANDIDATES = 20
#: What a hit's payload must carry: what fusion ranks on, and whether it is a document chunk.
HIT_FIELDS = (*ranking.RANKED_FIELDS, SOURCE_FIELD)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    tenant_id: str
    query: str
    user_id: str
    limit: int = 10
    mode: Mode = "hybrid"
    session_id: str | None = None
    agent_id: str | None = None
    types: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    metadata: dict[str, str | int | float | bool] | None = None
    after: datetime | None = None
    before: datetime | None = None
    params: ranking.RankingParams = field(default_factory=ranking.RankingParams)
    mmr_lambda: float | None = None
    min_score: float | None = None
    #: What to search: the user's memories, and chunks of their documents and of ``namespaces``.
    sources: frozenset[Source] = frozenset({"memories"})
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Found:
    memory: MemoryRecord
    score: float
    parts: dict[str, float]


@dataclass(frozen=True, slots=True)
class FoundChunk:
    """A hit in a knowledge document: the chunk and the document it belongs to."""

    chunk: ChunkRecord
    document: DocumentRecord
    score: float
    parts: dict[str, float]


Hit = Found | FoundChunk


def mmr(
    items: Sequence[ranking.RankedMemory], vectors: dict[str, list[float]], lam: float, limit: int
) -> list[ranking.RankedMemory]:
    """Maximal marginal relevance: trade relevance for novelty against what is already picked."""
    picked: list[ranking.RankedMemory] = []
    pool = list(items)
    top = max((i.score for i in items), default=1.0) or 1.0
    while pool and len(picked) < limit:

        def gain(item: ranking.RankedMemory) -> float:
            v = vectors[item.id]
            redundancy = max((sum(a * b for a, b in zip(v, vectors[p.id], strict=True)) for p in picked), default=0.0)
            return lam * item.score / top - (1 - lam) * redundancy

        best = max(pool, key=gain)
        picked.append(best)
        pool.remove(best)
    return picked


class SearchService:
    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        sparse: SparseEncoder,
        vectors: VectorIndex,
        metrics: Metrics,
        candidates: int = 200,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._sparse = sparse
        self._vectors = vectors
        self._metrics = metrics
        self._candidates = candidates

    def _filter(self, q: SearchQuery, at: datetime) -> VectorFilter:
        return VectorFilter(
            tenant_id=q.tenant_id,
            user_id=q.user_id,
            session_id=q.session_id,
            agent_id=q.agent_id,
            types=q.types,
            topics=q.topics,
            metadata=q.metadata,
            after=q.after.timestamp() if q.after else None,
            before=q.before.timestamp() if q.before else None,
            alive_at=at.timestamp(),
        )

    @staticmethod
    def _document_filter(q: SearchQuery) -> VectorFilter:
        """Chunks of the user's own documents and of the namespaces the query may read."""
        return VectorFilter(tenant_id=q.tenant_id, user_id=q.user_id, source="document", namespaces=q.namespaces)

    async def _timed(self, mode: str, query: VectorQuery) -> list[VectorHit]:
        started = time.perf_counter()
        hits = await self._vectors.search(query)
        self._metrics.observe_vector_search(mode, time.perf_counter() - started)
        return hits

    async def _query_vector(self, q: SearchQuery, text: str) -> list[float] | None:
        """The query's dense vector (none for keyword mode)."""
        return None if q.mode == "keyword" else (await self._embedder.embed_query([text]))[0]

    def _query_terms(self, q: SearchQuery, text: str) -> SparseVector | None:
        """The query's sparse vector (none for semantic mode, or a query without terms)."""
        sparse = None if q.mode == "semantic" else self._sparse.encode_query(text)
        return sparse if sparse is not None and sparse.indices else None

    async def _hits(
        self, where: VectorFilter, dense: Awaitable[list[float] | None], sparse: SparseVector | None, k: int
    ) -> tuple[list[ranking.Candidate], list[ranking.Candidate]]:
        """The engine's dense and sparse hits under one filter; the sparse search runs while the
        query is still being embedded."""
        async def run(mode: str, query: VectorQuery | None) -> list[ranking.Candidate]:
            return _candidates(await self._timed(mode, query)) if query is not None else []

        async def nearest() -> list[ranking.Candidate]:
            vector = await dense
            asked = VectorQuery(filter=where, limit=k, dense=vector, payload_fields=HIT_FIELDS) if vector is not None else None
            return await run("dense", asked)

        found = await asyncio.gather(
            nearest(),
            run("sparse", VectorQuery(filter=where, limit=k, sparse=sparse, payload_fields=HIT_FIELDS) if sparse is not None else None),
        )
        return found[0], found[1]

    async def _plan(self, q: SearchQuery) -> tuple[query_plan.QueryPlan, frozenset[Source]]:
        """Read the query against the user's known speakers (so a named person is matched, not
        searched), and the sources worth asking: documents only when the query names namespaces
        or the user owns a document (two vector queries saved for every other user)."""
        sources = q.sources
        async with self._db.transaction() as repos:
            speakers = await repos.memories.speakers(q.tenant_id, q.user_id)
            if "documents" in sources and not q.namespaces and not await repos.documents.owns_any(q.tenant_id, q.user_id):
                sources = sources - {"documents"}
        return query_plan.plan_query(q.query, speakers), sources

    async def _indexed(self, q: SearchQuery, text: str, where: VectorFilter) -> list[ranking.Candidate]:
        """Memories the keyword index files under the query's terms (summaries by topic), with the
        share of the query's terms they match as their score."""
        terms = sorted(term_set(text))
        if q.mode == "semantic" or not terms:
            return []
        async with self._db.transaction() as repos:
            matched = await repos.terms.lookup(q.tenant_id, q.user_id, terms, INDEXED_CANDIDATES)
            rows = await repos.memories.get_many(q.tenant_id, list(matched))
        return [
            ranking.Candidate(id=m.id, score=matched[m.id] / len(terms), payload=payload(m))
            for m in rows
            if matches(m, where)
        ]

    async def _memory_candidates(
        self,
        q: SearchQuery,
        text: str,
        where: VectorFilter,
        probes: tuple[Awaitable[list[float] | None], SparseVector | None],
        k: int,
    ) -> tuple[list[ranking.Candidate], list[ranking.Candidate]]:
        (dense, sparse), indexed = await asyncio.gather(self._hits(where, *probes, k), self._indexed(q, text, where))
        return dense, with_indexed(sparse, indexed)

    async def search(self, q: SearchQuery) -> list[Hit]:
        """The best ``q.limit`` hits of the query's sources, memories and chunks ranked together
        (one fusion over both, so their scores compare)."""
        started = time.perf_counter()
        at = now()
        where = self._filter(q, at)
        k = max(self._candidates, q.limit * 3)
        plan, sources = await self._plan(q)
        vector = asyncio.ensure_future(self._query_vector(q, plan.search_text))
        try:
            probes = (vector, self._query_terms(q, plan.search_text))
            sides = []
            if "memories" in sources:
                sides.append(self._memory_candidates(q, plan.search_text, where, probes, k))
            if "documents" in sources:
                sides.append(self._hits(self._document_filter(q), *probes, k))
            found = await asyncio.gather(*sides)
        finally:
            _settle(vector)
        dense = [c for side, _ in found for c in side]
        sparse = [c for _, side in found for c in side]
        # The best first, so the shortlist of those above min_score is a prefix of the top ones.
        wanted = q.limit * 3 if q.mmr_lambda is not None else q.limit + 5
        shortlist = ranking.rank(plan, dense, sparse, q.params, now=at.timestamp(), limit=wanted)
        if q.min_score is not None:
            shortlist = [r for r in shortlist if r.score >= q.min_score]
        records = await self._records(q.tenant_id, shortlist, at)
        live = [r for r in shortlist if r.id in records]
        if q.mmr_lambda is not None and live:
            embedded = await self._embedder.embed_query([_content(records[r.id]) for r in live])
            live = mmr(live, {r.id: v for r, v in zip(live, embedded, strict=True)}, q.mmr_lambda, q.limit)
        self._metrics.observe_search(q.mode, time.perf_counter() - started)
        return [_hit(records[r.id], r) for r in live[: q.limit]]

    async def memories(self, q: SearchQuery) -> list[Found]:
        """Memories only, whatever ``q.sources`` says (for callers that want no document hits)."""
        hits = await self.search(replace(q, sources=frozenset({"memories"})))
        return [h for h in hits if isinstance(h, Found)]

    async def _records(
        self, tenant_id: str, shortlist: Sequence[ranking.RankedMemory], at: datetime
    ) -> dict[str, MemoryRecord | tuple[ChunkRecord, DocumentRecord]]:
        """The shortlist's rows from SQL, the source of truth (a memory that expired or a chunk whose
        document went since the index was written is left out)."""
        chunk_ids = [r.id for r in shortlist if is_chunk(r.payload)]
        memory_ids = [r.id for r in shortlist if not is_chunk(r.payload)]
        out: dict[str, MemoryRecord | tuple[ChunkRecord, DocumentRecord]] = {}
        async with self._db.transaction() as repos:
            out.update((m.id, m) for m in await repos.memories.get_many(tenant_id, memory_ids) if alive(m, at))
            chunks = await repos.documents.chunks_by_id(tenant_id, chunk_ids)
            documents: dict[str, DocumentRecord | None] = {}
            for chunk in chunks:
                if chunk.document_id not in documents:
                    documents[chunk.document_id] = await repos.documents.get(tenant_id, chunk.document_id)
                document = documents[chunk.document_id]
                if document is not None:
                    out[chunk.id] = (chunk, document)
        return out


def _settle(task: asyncio.Future[object]) -> None:
    """Cancel a task nobody awaits any more, or mark its error as seen."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _content(record: MemoryRecord | tuple[ChunkRecord, DocumentRecord]) -> str:
    return record[0].content if isinstance(record, tuple) else record.content


def _hit(record: MemoryRecord | tuple[ChunkRecord, DocumentRecord], ranked: ranking.RankedMemory) -> Hit:
    if isinstance(record, tuple):
        chunk, document = record
        return FoundChunk(chunk, document, ranked.score, field_values(ranked.parts))
    return Found(record, ranked.score, field_values(ranked.parts))


def matches(memory: MemoryRecord, where: VectorFilter) -> bool:
    """Whether a memory read from SQL passes the filter the vector engine would have applied."""
    event = memory.event_time.timestamp()
    checks = (
        memory.tenant_id == where.tenant_id,
        where.user_id is None or memory.user_id == where.user_id,
        where.session_id is None or memory.session_id == where.session_id,
        where.agent_id is None or memory.agent_id == where.agent_id,
        where.types is None or memory.type in where.types,
        where.topics is None or memory.topic in where.topics,
        where.after is None or event >= where.after,
        where.before is None or event < where.before,
        where.alive_at is None or memory.expires_at is None or memory.expires_at.timestamp() > where.alive_at,
        not where.metadata or all(memory.metadata.get(k) == v for k, v in where.metadata.items()),
    )
    return all(checks)


def with_indexed(sparse: list[ranking.Candidate], indexed: Sequence[ranking.Candidate]) -> list[ranking.Candidate]:
    """The sparse candidates plus keyword-index finds they lack, scaled so that a memory matching
    every query term counts as much as the best BM25 hit."""
    present = {c.id for c in sparse}
    top = max((c.score for c in sparse), default=1.0)
    return sparse + [replace(c, score=c.score * top) for c in indexed if c.id not in present]


def _candidates(hits: Sequence[VectorHit]) -> list[ranking.Candidate]:
    return [ranking.Candidate(id=h.id, score=h.score, payload=h.payload) for h in hits]
