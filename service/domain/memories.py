"""Long-term memories: create (with de-duplication), read, list, change, delete, history."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from service.domain import records
from service.domain.clock import as_utc, now
from service.domain.errors import InvalidInput, LimitExceeded, NotFound, checked_cursor
from service.domain.indexing import SYNC_MEMORY, Indexer
from service.domain.novelty import new_information
from service.domain.profiles import queue_refresh
from service.embedding.text import keywords as extract_keywords
from service.storage.ports import Database, Embedder, Repos, VectorIndex
from service.storage.records import MemoryQuery, MemoryRecord, MemoryVersion, Page, VectorFilter, VectorQuery

log = logging.getLogger(__name__)

CREATED, DUPLICATE, MERGED, UPDATED = "created", "duplicate", "merged", "updated"


@dataclass(frozen=True, slots=True)
class NewMemory:
    user_id: str
    content: str
    type: str = "semantic"
    session_id: str | None = None
    agent_id: str | None = None
    modality: str = "text"
    media_url: str | None = None
    importance: float = 0.5
    topic: str | None = None
    keywords: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    event_time: datetime | None = None
    expires_at: datetime | None = None
    source_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outcome:
    memory: MemoryRecord
    status: str  # created | duplicate | merged | updated


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_batch_items: int
    max_content_chars: int
    dedup_similarity: float


def alive(memory: MemoryRecord, at: datetime) -> bool:
    return memory.expires_at is None or memory.expires_at > at


def build(tenant_id: str, new: NewMemory, at: datetime, id: str | None = None) -> MemoryRecord:
    """The first version of a new memory; ``id`` when the caller chose it (an import), else a fresh UUID."""
    return MemoryRecord(
        tenant_id=tenant_id,
        id=id if id is not None else str(uuid4()),
        user_id=new.user_id,
        session_id=new.session_id,
        agent_id=new.agent_id,
        type=new.type,
        content=new.content,
        modality=new.modality,
        media_url=new.media_url,
        importance=new.importance,
        topic=new.topic,
        keywords=new.keywords if new.keywords is not None else extract_keywords(new.content),
        metadata=new.metadata,
        speaker=None,
        event_time=as_utc(new.event_time) if new.event_time else at,
        created_at=at,
        updated_at=at,
        expires_at=as_utc(new.expires_at) if new.expires_at else None,
        source_ids=list(new.source_ids),
        position=None,
        version=1,
        content_hash=records.content_hash(new.content),
    )


async def record_created(repos: Repos, memories: Sequence[MemoryRecord]) -> list[int]:
    """Store new memories with their first version and queue them for indexing (one transaction)."""
    if not memories:
        return []
    tenant = memories[0].tenant_id
    await repos.memories.insert_many(memories)
    await repos.versions.add(tenant, [records.version(m, CREATED, {}, m.created_at) for m in memories])
    await queue_refresh(repos, memories)
    return await repos.jobs.enqueue(tenant, SYNC_MEMORY, [m.id for m in memories])


def _final(outcome: Outcome, merges: dict[str, MemoryRecord], originals: dict[str, MemoryRecord]) -> Outcome:
    """The outcome with the memory as stored; a merge that replaced the text is ``updated``."""
    memory = merges.get(outcome.memory.id, outcome.memory)
    if outcome.status == MERGED and memory.content != originals[memory.id].content:
        return Outcome(memory, UPDATED)
    return Outcome(memory, outcome.status)


class MemoryService:
    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        vectors: VectorIndex,
        indexer: Indexer,
        limits: MemoryLimits,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._vectors = vectors
        self._indexer = indexer
        self._limits = limits
        self._wake = wake

    def _check(self, batch: Sequence[NewMemory]) -> None:
        if not batch:
            raise InvalidInput("memories must hold at least one memory")
        if len(batch) > self._limits.max_batch_items:
            raise LimitExceeded(f"a batch holds at most {self._limits.max_batch_items} memories; got {len(batch)}")
        for index, memory in enumerate(batch):
            if not memory.content.strip():
                raise InvalidInput(f"memories[{index}].content must not be blank")
            if len(memory.content) > self._limits.max_content_chars:
                raise LimitExceeded(
                    f"memories[{index}].content has {len(memory.content)} characters; "
                    f"the limit is {self._limits.max_content_chars}"
                )

    async def embed(self, contents: Sequence[str]) -> list[list[float]]:
        """The vectors memories of these contents get (on the indexing lane), for ``add`` and
        ``similar_many`` to share."""
        return await self._embedder.embed([Indexer.text_of(content) for content in contents])

    async def add(
        self, tenant_id: str, batch: Sequence[NewMemory], vectors: Sequence[list[float]] | None = None
    ) -> list[Outcome]:
        """Store new memories; identical ones return the memory already kept, near-identical ones are
        merged into it (as its new version when they carry new information). ``vectors``: the
        contents' embeddings from ``embed``, when the caller has them."""
        self._check(batch)
        if vectors is not None and len(vectors) != len(batch):
            raise ValueError(f"{len(vectors)} vectors for {len(batch)} memories")
        at = now()
        candidates = [build(tenant_id, new, at) for new in batch]
        if vectors is None:
            vectors = await self.embed([m.content for m in candidates])
        near = await self._near_duplicates(candidates, vectors, at)
        outcomes: list[Outcome] = []
        created: list[tuple[MemoryRecord, list[float]]] = []
        async with self._db.transaction() as repos:
            exact = await self._exact_duplicates(repos, candidates, at)
            seen: dict[tuple[str, str, str], MemoryRecord] = {}
            merges: dict[str, MemoryRecord] = {}
            originals: dict[str, MemoryRecord] = {}
            for memory, vector in zip(candidates, vectors, strict=True):
                key = (memory.user_id, memory.type, memory.content_hash)
                if key in exact or key in seen:
                    outcomes.append(Outcome(exact.get(key) or seen[key], DUPLICATE))
                elif memory.id in near:
                    originals.setdefault(near[memory.id].id, near[memory.id])
                    target = merges.get(near[memory.id].id, near[memory.id])
                    merged = self._merge(target, memory, at)
                    merges[target.id] = merged
                    outcomes.append(Outcome(merged, MERGED))
                else:
                    seen[key] = memory
                    created.append((memory, vector))
                    outcomes.append(Outcome(memory, CREATED))
            jobs = await record_created(repos, [m for m, _ in created])
            for merged in merges.values():
                await self._save_change(repos, originals[merged.id], merged, MERGED)
        await self._index_now(created, jobs)
        return [_final(o, merges, originals) for o in outcomes]

    async def _exact_duplicates(
        self, repos: Repos, candidates: Sequence[MemoryRecord], at: datetime
    ) -> dict[tuple[str, str, str], MemoryRecord]:
        found: dict[tuple[str, str, str], MemoryRecord] = {}
        groups: dict[tuple[str, str], list[str]] = {}
        for m in candidates:
            groups.setdefault((m.user_id, m.type), []).append(m.content_hash)
        for (user_id, type_), hashes in groups.items():
            for existing in await repos.memories.find_by_hash(candidates[0].tenant_id, user_id, type_, hashes):
                if alive(existing, at):
                    found.setdefault((existing.user_id, existing.type, existing.content_hash), existing)
        return found

    async def _near_duplicates(
        self, candidates: Sequence[MemoryRecord], vectors: Sequence[list[float]], at: datetime
    ) -> dict[str, MemoryRecord]:
        """Candidate id -> an indexed memory of the same user and type above the similarity threshold."""
        threshold = self._limits.dedup_similarity
        if threshold >= 1.0:
            return {}
        hits: dict[str, str] = {}
        for memory, vector in zip(candidates, vectors, strict=True):
            where = VectorFilter(
                tenant_id=memory.tenant_id, user_id=memory.user_id, types=(memory.type,), alive_at=at.timestamp()
            )
            found = await self._vectors.search(VectorQuery(filter=where, limit=1, dense=vector))
            if found and found[0].score >= threshold:
                hits[memory.id] = found[0].id
        if not hits:
            return {}
        async with self._db.transaction() as repos:
            existing = {m.id: m for m in await repos.memories.get_many(candidates[0].tenant_id, list(set(hits.values())))}
        return {cid: existing[mid] for cid, mid in hits.items() if mid in existing and alive(existing[mid], at)}

    @staticmethod
    def _merge(target: MemoryRecord, new: MemoryRecord, at: datetime) -> MemoryRecord:
        """Fold a near-duplicate into ``target``. When it states something ``target`` does not
        (another date, name, number, a negation), its text becomes the memory's new version and
        the old text stays in the history; otherwise only bookkeeping fields are merged."""
        changes: dict[str, Any] = {
            "importance": max(target.importance, new.importance),
            "keywords": list(dict.fromkeys([*target.keywords, *new.keywords])),
            "metadata": {**new.metadata, **target.metadata},
        }
        if novel := new_information(target.content, new.content):
            log.debug("near-duplicate carries new information", extra={"memory_id": target.id, "new": sorted(novel)})
            changes |= {
                "content": new.content,
                "keywords": new.keywords,
                "metadata": {**target.metadata, **new.metadata},
                "event_time": new.event_time,
            }
        merged = records.apply_changes(target, changes, at)
        return replace(merged, source_ids=list(dict.fromkeys([*target.source_ids, *new.source_ids])))

    async def _save_change(self, repos: Repos, previous: MemoryRecord, memory: MemoryRecord, op: str) -> None:
        """Store a changed memory with a version recording the diff, and queue it for re-indexing."""
        try:
            await repos.memories.replace(memory)
        except LookupError as exc:  # deleted by another request since it was read
            raise NotFound(f"memory {memory.id!r} not found") from exc
        await repos.versions.add(
            memory.tenant_id, [records.version(memory, op, records.diff(previous, memory), memory.updated_at)]
        )
        await repos.jobs.enqueue(memory.tenant_id, SYNC_MEMORY, [memory.id])
        await queue_refresh(repos, [memory])

    async def _index_now(self, created: Sequence[tuple[MemoryRecord, list[float]]], jobs: list[int]) -> None:
        """Index fresh memories at once (read-your-writes); the outbox retries if this fails."""
        if not created:
            return
        try:
            await self._indexer.upsert([m for m, _ in created], [v for _, v in created])
            async with self._db.transaction() as repos:
                await repos.jobs.complete(jobs)
        except Exception:  # noqa: BLE001 - the outbox job is still there
            log.warning("inline indexing failed; the background worker will retry", exc_info=True)
        self._wake()

    async def get(self, tenant_id: str, memory_id: str) -> MemoryRecord:
        async with self._db.transaction() as repos:
            found = await repos.memories.get_many(tenant_id, [memory_id])
        if not found or not alive(found[0], now()):
            raise NotFound(f"memory {memory_id!r} not found")
        return found[0]

    async def list(self, query: MemoryQuery) -> Page[MemoryRecord]:
        with checked_cursor():
            async with self._db.transaction() as repos:
                return await repos.memories.list(query)

    async def update(
        self, tenant_id: str, memory_id: str, changes: dict[str, Any], source_ids: Sequence[str] = ()
    ) -> MemoryRecord:
        """Change a memory (a new version); ``source_ids`` are added to the ones it has."""
        if "content" in changes:
            self._check([NewMemory(user_id="-", content=changes["content"])])
        at = now()
        async with self._db.transaction() as repos:
            found = await repos.memories.get_many(tenant_id, [memory_id])
            if not found or not alive(found[0], at):
                raise NotFound(f"memory {memory_id!r} not found")
            if "content" in changes and "keywords" not in changes:
                changes = {**changes, "keywords": extract_keywords(changes["content"])}
            updated = records.apply_changes(found[0], changes, at)
            if source_ids:
                updated = replace(updated, source_ids=list(dict.fromkeys([*updated.source_ids, *source_ids])))
            await self._save_change(repos, found[0], updated, "updated")
        self._wake()
        return updated

    async def similar_many(
        self, tenant_id: str, user_id: str, vectors: Sequence[list[float]], types: tuple[str, ...], limit: int
    ) -> list[list[MemoryRecord]]:
        """For each vector (of ``embed``), the user's memories of these types nearest to it (dense
        cosine), nearest first."""
        if not vectors:
            return []
        at = now()
        where = VectorFilter(tenant_id=tenant_id, user_id=user_id, types=types, alive_at=at.timestamp())
        found = [await self._vectors.search(VectorQuery(filter=where, limit=limit, dense=v)) for v in vectors]
        async with self._db.transaction() as repos:
            ids = list(dict.fromkeys(h.id for hits in found for h in hits))
            rows = {m.id: m for m in await repos.memories.get_many(tenant_id, ids)}
        return [[rows[h.id] for h in hits if h.id in rows and alive(rows[h.id], at)] for hits in found]

    async def delete(self, tenant_id: str, memory_id: str) -> None:
        at = now()
        async with self._db.transaction() as repos:
            found = await repos.memories.get_many(tenant_id, [memory_id])
            if not found:
                raise NotFound(f"memory {memory_id!r} not found")
            await remove(repos, found, "deleted", at)
        self._wake()

    async def history(self, tenant_id: str, memory_id: str) -> list[MemoryVersion]:
        async with self._db.transaction() as repos:
            versions = await repos.versions.history(tenant_id, memory_id)
        if not versions:
            raise NotFound(f"memory {memory_id!r} not found")
        return versions


async def remove(repos: Repos, memories: Sequence[MemoryRecord], op: str, at: datetime) -> None:
    """Delete memories, leave a tombstone version for each, and queue their vectors for removal."""
    if not memories:
        return
    tenant = memories[0].tenant_id
    tombstones: list[MemoryVersion] = [
        records.version(replace(m, version=m.version + 1), op, {}, at) for m in memories
    ]
    await repos.memories.delete_many(tenant, [m.id for m in memories])
    await repos.terms.delete(tenant, [m.id for m in memories])
    await repos.versions.add(tenant, tombstones)
    await repos.jobs.enqueue(tenant, SYNC_MEMORY, [m.id for m in memories])
    await queue_refresh(repos, memories)
