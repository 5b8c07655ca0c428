"""Structured memory: facts found in a session's new messages become semantic memories.

Each fact the extractor finds is compared with the user's most similar semantic memories and
becomes a new memory (``add``), a new version of one (``update``: the old text stays in its
history), a tombstone (``delete``), or nothing (``none``). Its triple is kept in the metadata:
``{"subject": "user", "predicate": "likes", "object": "coffee"}``.
"""

from __future__ import annotations

from dataclasses import replace

from service.digest.model import Fact, FactDecision, FactExtractor, KnownMemory
from service.domain.clock import now
from service.domain.digests import advanced, snapshot, still_current, turn
from service.domain.errors import NotFound
from service.domain.memories import MemoryService, NewMemory
from service.observability.metrics import Metrics
from service.storage.ports import Database
from service.storage.records import MemoryRecord, SessionRecord

#: Messages read per extraction pass, and similar memories shown to ``decide``.
EXTRACT_PAGE = 100
SIMILAR = 5
TRIPLE = ("subject", "predicate", "object")


def known(memory: MemoryRecord) -> KnownMemory:
    triple = {k: memory.metadata.get(k) for k in TRIPLE}
    return KnownMemory(memory.id, memory.content, **{k: v if isinstance(v, str) else None for k, v in triple.items()})


def fact_memory(session: SessionRecord, fact: Fact) -> NewMemory:
    return NewMemory(
        user_id=session.user_id,
        content=fact.content,
        type="semantic",
        session_id=session.id,
        agent_id=session.agent_id,
        importance=fact.importance,
        metadata={"subject": fact.subject, "predicate": fact.predicate, "object": fact.object},
        source_ids=[fact.source_id],
    )


class FactExtraction:
    def __init__(self, db: Database, extractor: FactExtractor, memories: MemoryService, metrics: Metrics) -> None:
        self._db = db
        self._extractor = extractor
        self._memories = memories
        self._metrics = metrics

    async def run(self, tenant_id: str, session_id: str) -> int:
        """Take in the session's new messages; returns how many facts changed memory."""
        found = await snapshot(self._db, tenant_id, session_id)
        async with self._db.transaction() as repos:
            pending = await repos.messages.after(tenant_id, session_id, found.digest.extracted.until, EXTRACT_PAGE)
        if not pending:
            return 0
        facts = await self._extractor.extract([turn(m) for m in pending])
        # Applied before the mark moves: a crash in between repeats facts, which dedup absorbs.
        session = found.session
        # One embedding batch for every fact: the nearest memories and the new memories' vectors
        # (one call a fact queued each behind the indexing batches: seconds per page of messages).
        vectors = await self._memories.embed([f.content for f in facts])
        nearest = await self._memories.similar_many(tenant_id, session.user_id, vectors, ("semantic", "profile"), SIMILAR)
        applied, made = 0, []
        for fact, similar, vector in zip(facts, nearest, vectors, strict=True):
            # Memories this batch already wrote count as known, so a later fact can update them.
            decision = await self._extractor.decide(fact, [known(m) for m in [*made, *similar]])
            changed = await self._apply(session, decision, vector if decision.fact.content == fact.content else None)
            made += changed
            applied += bool(changed)
        async with self._db.transaction() as repos:
            current = await still_current(repos, found.digest, "extracted")
            if current is not None:
                await repos.digests.save(replace(current, extracted=advanced(current.extracted, pending), updated_at=now()))
        self._metrics.extraction_completed()
        return applied

    async def _apply(self, session: SessionRecord, decision: FactDecision, vector: list[float] | None) -> list[MemoryRecord]:
        """Carry out one decision (``vector``: its fact's embedding, when known); returns the memory
        it wrote (none for delete and nothing)."""
        fact, target = decision.fact, decision.target_id
        try:
            if decision.op == "add" or (decision.op in ("update", "delete") and target is None):
                [outcome] = await self._memories.add(session.tenant_id, [fact_memory(session, fact)], [vector] if vector else None)
                return [outcome.memory]
            if decision.op == "update" and target is not None:
                changes = {"content": fact.content, "metadata": fact_memory(session, fact).metadata}
                return [await self._memories.update(session.tenant_id, target, changes, source_ids=[fact.source_id])]
            if decision.op == "delete" and target is not None:
                await self._memories.delete(session.tenant_id, target)
        except NotFound:
            pass  # the target went away meanwhile
        return []
