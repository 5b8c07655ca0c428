"""Building memory records and their version snapshots (pure functions)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from service.domain.errors import InvalidInput
from service.storage.records import MemoryRecord, MemoryVersion, field_values

MEMORY_TYPES = ("semantic", "episodic", "procedural", "summary", "profile")
MODALITIES = ("text", "image", "audio")

#: Fields a PATCH may change.
MUTABLE_FIELDS = frozenset(
    {"content", "type", "importance", "topic", "keywords", "metadata", "event_time", "expires_at", "media_url", "modality"}
)
#: Fields kept out of version snapshots and diffs (bookkeeping, not content).
_BOOKKEEPING = frozenset({"tenant_id", "version", "updated_at", "content_hash"})

_SPACES = re.compile(r"\s+")


def content_hash(content: str) -> str:
    """Hash of the content with case and whitespace folded: identical memories hash alike."""
    normal = _SPACES.sub(" ", content).strip().casefold()
    return hashlib.sha256(normal.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    """A snapshot's value: dates as ISO text, lists and dicts copied one level (their items are
    plain JSON values), so a snapshot never shares a container with a record."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return value.copy()
    return value


def snapshot(memory: MemoryRecord) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in field_values(memory).items() if k not in _BOOKKEEPING}


def diff(before: MemoryRecord, after: MemoryRecord) -> dict[str, Any]:
    """``{field: [old, new]}`` for every field that changed."""
    old, new = snapshot(before), snapshot(after)
    return {k: [old[k], new[k]] for k in new if old.get(k) != new[k]}


def version(memory: MemoryRecord, op: str, changes: dict[str, Any], at: datetime) -> MemoryVersion:
    return MemoryVersion(memory.id, memory.version, op, changes, snapshot(memory), at)


def apply_changes(memory: MemoryRecord, changes: dict[str, Any], at: datetime) -> MemoryRecord:
    """The memory with ``changes`` applied, its version bumped and its hash kept in step."""
    unknown = set(changes) - MUTABLE_FIELDS
    if unknown:
        raise InvalidInput(f"fields cannot be changed: {', '.join(sorted(unknown))}")
    changed = replace(memory, **changes)
    return replace(changed, version=memory.version + 1, updated_at=at, content_hash=content_hash(changed.content))
