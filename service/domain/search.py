"""Recall: hybrid search over a user's memories, with the score parts that explain each rank."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Literal

from service.domain import ranking
from service.domain.clock import now
from service.domain.indexing import payload
from service.domain.memories import alive
from service.embedding.text import term_set
from service.observability.metrics import Metrics
from service.storage.ports import Database, Embedder, SparseEncoder, VectorIndex
from service.storage.records import MemoryRecord, VectorFilter, VectorHit, VectorQuery

Mode = Literal["hybrid", "semantic", "keyword"]

#: Memories the keyword index may add to one search's candidates.
INDEXED_CANDIDATES = 20


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


@dataclass(frozen=True, slots=True)
class Found:
    memory: MemoryRecord
    score: float
    parts: dict[str, float]


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

    async def _timed(self, mode: str, query: VectorQuery) -> list[VectorHit]:
        started = time.perf_counter()
        hits = await self._vectors.search(query)
        self._metrics.observe_vector_search(mode, time.perf_counter() - started)
        return hits

    async def _dense(self, q: SearchQuery, text: str, where: VectorFilter, k: int) -> list[ranking.Candidate]:
        if q.mode == "keyword":
            return []
        [vector] = await self._embedder.embed([text])
        return _candidates(await self._timed("dense", VectorQuery(filter=where, limit=k, dense=vector)))

    async def _keyword(self, q: SearchQuery, text: str, where: VectorFilter, k: int) -> list[ranking.Candidate]:
        sparse = self._sparse.encode_query(text)
        if q.mode == "semantic" or not sparse.indices:
            return []
        return _candidates(await self._timed("sparse", VectorQuery(filter=where, limit=k, sparse=sparse)))

    async def _plan(self, q: SearchQuery) -> ranking.QueryPlan:
        """Read the query against the user's known speakers (so a named person is matched, not searched)."""
        async with self._db.transaction() as repos:
            speakers = await repos.memories.speakers(q.tenant_id, q.user_id)
        return ranking.plan_query(q.query, speakers)

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

    async def search(self, q: SearchQuery) -> list[Found]:
        started = time.perf_counter()
        at = now()
        where = self._filter(q, at)
        k = max(self._candidates, q.limit * 3)
        plan = await self._plan(q)
        dense, sparse, indexed = await asyncio.gather(
            self._dense(q, plan.search_text, where, k),
            self._keyword(q, plan.search_text, where, k),
            self._indexed(q, plan.search_text, where),
        )
        sparse = with_indexed(sparse, indexed)
        ranked = ranking.rank(plan, dense, sparse, q.params, now=at.timestamp())
        if q.min_score is not None:
            ranked = [r for r in ranked if r.score >= q.min_score]
        shortlist = ranked[: q.limit * 3 if q.mmr_lambda is not None else q.limit + 5]
        async with self._db.transaction() as repos:
            rows = {m.id: m for m in await repos.memories.get_many(q.tenant_id, [r.id for r in shortlist])}
        live = [r for r in shortlist if r.id in rows and alive(rows[r.id], at)]
        if q.mmr_lambda is not None and live:
            embedded = await self._embedder.embed([rows[r.id].content for r in live])
            live = mmr(live, {r.id: v for r, v in zip(live, embedded, strict=True)}, q.mmr_lambda, q.limit)
        self._metrics.observe_search(q.mode, time.perf_counter() - started)
        return [Found(rows[r.id], r.score, asdict(r.parts)) for r in live[: q.limit]]


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
