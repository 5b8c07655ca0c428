"""User profiles: fields the client sets (JSON merge patch) and parts derived from the memories.

``facts`` are the user's most valuable ``semantic`` and ``profile`` memories (importance, then
recency); ``topics`` the memory topics and keywords that recur most, weighted by recency. A
memory write queues one ``refresh_profile`` job for its user in the same transaction, so the
derived parts follow within moments and a write never waits for them. Reading a profile takes
what was derived; only a user with nothing derived yet gets them derived on the spot (bounded
queries: ``FACTS`` rows and the newest ``TOPIC_SOURCES`` memories). The facts are read from their
memories by id each time, so an edited or deleted memory shows at once.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.clock import now
from service.domain.errors import LimitExceeded, NotFound
from service.storage.ports import Database, Repos
from service.storage.records import MemoryQuery, MemoryRecord, ProfileRecord

#: The outbox job kind: re-derive a user's facts and topics (subject: the user id).
REFRESH_PROFILE = "refresh_profile"

FACT_TYPES = ("semantic", "profile")
FACTS = 20
TOPICS = 20
#: Memories the topics are counted over (the newest; older ones weigh little anyway).
TOPIC_SOURCES = 500
TOPIC_HALF_LIFE_DAYS = 30.0

#: Limits of the client's fields (the whole object, after a patch is applied).
MAX_FIELDS = 64
MAX_FIELDS_BYTES = 16_384
FIELD_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    fields: dict[str, Any]
    facts: list[dict[str, Any]]
    topics: list[dict[str, Any]]
    updated_at: datetime | None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, a null removes its key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def fields_size(fields: dict[str, Any]) -> int:
    """Bytes of the fields as compact UTF-8 JSON (what the size limit counts)."""
    return len(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_fields(fields: dict[str, Any]) -> None:
    if len(fields) > MAX_FIELDS:
        raise LimitExceeded(f"a profile holds at most {MAX_FIELDS} fields; this change would make {len(fields)}")
    if (size := fields_size(fields)) > MAX_FIELDS_BYTES:
        raise LimitExceeded(f"profile fields are at most {MAX_FIELDS_BYTES} bytes of JSON; this change would make {size}")


def facts_of(memories: Sequence[MemoryRecord]) -> list[dict[str, Any]]:
    return [{"id": m.id, "content": m.content, "importance": m.importance, "type": m.type} for m in memories]


def topics_of(memories: Sequence[MemoryRecord], at: datetime) -> list[dict[str, Any]]:
    """Each memory's topic and keywords (once each, case-folded), weighted by its age
    (halving every ``TOPIC_HALF_LIFE_DAYS``); the best ``TOPICS``, the first weighing 1."""
    weights: Counter[str] = Counter()
    for memory in memories:
        age_days = max((at - memory.event_time).total_seconds(), 0.0) / 86_400
        decay = math.pow(0.5, age_days / TOPIC_HALF_LIFE_DAYS)
        terms = {t.strip().casefold() for t in [memory.topic or "", *memory.keywords]} - {""}
        for term in terms:
            weights[term] += decay
    best = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:TOPICS]
    top = best[0][1] if best and best[0][1] > 0 else 1.0
    return [{"term": term, "weight": round(weight / top, 4)} for term, weight in best]


async def derive(repos: Repos, tenant_id: str, user_id: str, at: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The user's facts and topics as their memories stand now."""
    facts = await repos.profiles.top_facts(tenant_id, user_id, FACT_TYPES, at, FACTS)
    recent = await repos.memories.list(MemoryQuery(tenant_id=tenant_id, limit=TOPIC_SOURCES, alive_at=at, user_id=user_id))
    return facts_of(facts), topics_of(recent.items, at)


async def read_profile(repos: Repos, tenant_id: str, user_id: str, at: datetime) -> Profile:
    """The stored profile; derived parts are computed here only while none were derived yet."""
    stored = await repos.profiles.get(tenant_id, user_id)
    return await _view(repos, tenant_id, user_id, stored, at)


async def _view(repos: Repos, tenant_id: str, user_id: str, stored: ProfileRecord | None, at: datetime) -> Profile:
    if stored is not None and stored.derived_at is not None:
        facts, topics = await _current(repos, tenant_id, stored.facts, at), stored.topics
    else:
        facts, topics = await derive(repos, tenant_id, user_id, at)
    updated = max((t for t in (stored.updated_at, stored.derived_at) if t), default=None) if stored else None
    return Profile(user_id, stored.fields if stored else {}, facts, topics, updated)


async def _current(repos: Repos, tenant_id: str, facts: Sequence[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """The derived facts as their memories read now (a change or deletion shows at once; only
    which memories are the top ones waits for the refresh)."""
    rows = {m.id: m for m in await repos.memories.get_many(tenant_id, [f["id"] for f in facts])}
    return facts_of([rows[f["id"]] for f in facts if f["id"] in rows and _alive(rows[f["id"]], at)])


def _alive(memory: MemoryRecord, at: datetime) -> bool:
    return memory.expires_at is None or memory.expires_at > at


async def queue_refresh(repos: Repos, memories: Sequence[MemoryRecord]) -> None:
    """Queue one profile refresh per user of these memories (in the caller's transaction)."""
    if memories:
        users = sorted({m.user_id for m in memories})
        await repos.jobs.enqueue(memories[0].tenant_id, REFRESH_PROFILE, users, coalesce=True)


class ProfileService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, user_id: str) -> Profile:
        async with self._db.transaction() as repos:
            stored = await repos.profiles.get(tenant_id, user_id)
            if stored is None and await repos.users.get(tenant_id, user_id) is None:
                raise NotFound(f"user {user_id!r} not found")
            return await _view(repos, tenant_id, user_id, stored, now())

    async def patch_fields(self, tenant_id: str, user_id: str, patch: dict[str, Any]) -> Profile:
        """Apply a merge patch to the fields; a user with no records yet is made by it."""
        at = now()
        async with self._db.transaction() as repos:
            stored = await repos.profiles.get(tenant_id, user_id, for_update=True)
            fields = merge_patch(stored.fields if stored else {}, patch)
            check_fields(fields)
            if stored is not None and stored.derived_at is not None:
                facts, topics, derived_at = await _current(repos, tenant_id, stored.facts, at), stored.topics, stored.derived_at
            else:
                (facts, topics), derived_at = await derive(repos, tenant_id, user_id, at), at
            created = stored.created_at if stored else at
            saved = ProfileRecord(tenant_id, user_id, fields, facts, topics, created, at, derived_at)
            await repos.profiles.save(saved)
        return Profile(user_id, fields, facts, topics, at)

    async def refresh(self, tenant_id: str, user_ids: Sequence[str]) -> None:
        """The ``refresh_profile`` job handler: re-derive each user's facts and topics (a user
        left with no memories and no profile gets none: a refresh never brings a user back)."""
        for user_id in dict.fromkeys(user_ids):
            at = now()
            async with self._db.transaction() as repos:
                facts, topics = await derive(repos, tenant_id, user_id, at)
                if facts or topics or await repos.profiles.get(tenant_id, user_id) is not None:
                    await repos.profiles.save_derived(tenant_id, user_id, facts, topics, at)
