"""Condensation (MemGPT's periodic summaries): runs of a session's messages become summary memories.

Every ``condense_every`` messages of a session are condensed into one ``summary`` memory with a
topic, keywords, importance, an event time and ``metadata.start``/``metadata.end`` spanning its
messages, and ``source_ids`` naming them. Its topic and keywords go into the keyword index, so a
query naming the topic finds the summary, and through its sources the raw turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from uuid import uuid4

from service.digest.model import Digest, Summarizer
from service.domain import records
from service.domain.clock import now
from service.domain.digests import Snapshot, advanced, snapshot, still_current, turn
from service.domain.memories import record_created
from service.embedding.text import tokenize
from service.observability.metrics import Metrics
from service.storage.ports import Database, Repos
from service.storage.records import MemoryRecord, MessageRecord


#: Runs of messages condensed a pass (one read, one transaction).
RUNS_PER_PASS = 10


def index_terms(memory: MemoryRecord) -> list[str]:
    """The keyword-index terms of a memory: the stems of its topic and keywords."""
    return list(dict.fromkeys(t for text in [memory.topic or "", *memory.keywords] for t in tokenize(text) if len(t) <= 64))


def summary_memory(found: Snapshot, messages: Sequence[MessageRecord], digest: Digest) -> MemoryRecord:
    at = now()
    start, end = messages[0].created_at, messages[-1].created_at
    return MemoryRecord(
        tenant_id=found.session.tenant_id,
        id=str(uuid4()),
        user_id=found.session.user_id,
        session_id=found.session.id,
        agent_id=found.session.agent_id,
        type="summary",
        content=digest.text,
        modality="text",
        media_url=None,
        importance=min(max(digest.importance, 0.0), 1.0),
        topic=digest.topic[:128] or None,
        keywords=digest.keywords[:64],
        metadata={"start": start.isoformat(), "end": end.isoformat(), "message_count": len(messages)},
        speaker=None,
        event_time=start,
        created_at=at,
        updated_at=at,
        expires_at=None,
        source_ids=[m.id for m in messages],
        position=None,
        version=1,
        content_hash=records.content_hash(digest.text),
    )


async def store_summaries(repos: Repos, memories: Sequence[MemoryRecord]) -> None:
    """Keep summary memories with their first versions, index jobs and keyword-index terms."""
    await record_created(repos, memories)
    for memory in memories:
        await repos.terms.add(memory.tenant_id, memory.user_id, memory.id, index_terms(memory))


class Condenser:
    def __init__(
        self,
        db: Database,
        summarizer: Summarizer,
        every: int,
        max_tokens: int,
        metrics: Metrics,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._wake = wake
        self._summarizer = summarizer
        self._every = every
        self._max_tokens = max_tokens

    async def due(self, tenant_id: str, session_id: str) -> list[MemoryRecord]:
        """Condense every full run of ``every`` new messages (nothing when condensing is only on demand)."""
        if self._every <= 0:
            return []
        return await self._condense(tenant_id, session_id, self._every, whole_runs=True)

    async def pending(self, tenant_id: str, session_id: str) -> list[MemoryRecord]:
        """Condense every message not condensed yet, a last partial run included."""
        return await self._condense(tenant_id, session_id, self._every or 20, whole_runs=False)

    async def _condense(self, tenant_id: str, session_id: str, run: int, whole_runs: bool) -> list[MemoryRecord]:
        """Condense what is pending, up to ``RUNS_PER_PASS`` runs a pass: one read, the summaries,
        one transaction that stores them and moves the mark (a backlog of runs was a transaction
        a run, each waiting its turn to write)."""
        made: list[MemoryRecord] = []
        while True:
            found = await snapshot(self._db, tenant_id, session_id)
            async with self._db.transaction() as repos:
                pending = await repos.messages.after(tenant_id, session_id, found.digest.condensed.until, run * RUNS_PER_PASS)
            runs = [pending[start : start + run] for start in range(0, len(pending), run)]
            if whole_runs:
                runs = [part for part in runs if len(part) == run]
            if not runs:
                return made
            memories = []
            for part in runs:
                digest = await self._summarizer.condense([turn(m) for m in part], self._max_tokens)
                if digest.text.strip():  # blank turns: no summary, but they count as condensed
                    memories.append(summary_memory(found, part, digest))
            taken = [message for part in runs for message in part]
            async with self._db.transaction() as repos:
                current = await still_current(repos, found.digest, "condensed")
                if current is None:
                    return made
                await store_summaries(repos, memories)
                await repos.digests.save(replace(current, condensed=advanced(current.condensed, taken), updated_at=now()))
            made.extend(memories)
            for _ in memories:
                self._metrics.summary_written()
            if memories:
                self._wake()  # their indexing jobs are committed
            if len(pending) < run * RUNS_PER_PASS:
                return made  # that was all there was
