"""Sessions: create, read, list, update and delete, with their buffers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from service.domain.clock import now
from service.domain.errors import Conflict, InvalidInput, NotFound, checked_cursor
from service.domain.memories import remove
from service.storage.ports import Database, MessageBuffer
from service.storage.records import Page, SessionChanges, SessionQuery, SessionRecord

log = logging.getLogger(__name__)


def buffer_key(tenant_id: str, session_id: str) -> str:
    return f"{tenant_id}:{session_id}"


async def drop_buffer(buffer: MessageBuffer, key: str) -> None:
    """Delete a buffer after a committed change; a failure is logged (the buffer is only a cache)."""
    try:
        await buffer.delete(key)
    except Exception:  # noqa: BLE001 - the SQL change is acknowledged either way
        log.warning("buffer could not be dropped; it is dropped once the buffer store answers, or expires", exc_info=True)


@dataclass(frozen=True, slots=True)
class NewSession:
    user_id: str
    id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, Any] | None = None


class SessionService:
    def __init__(self, db: Database, buffer: MessageBuffer, wake: Callable[[], None] = lambda: None) -> None:
        self._db = db
        self._buffer = buffer
        self._wake = wake

    async def create(self, tenant_id: str, new: NewSession) -> SessionRecord:
        at = now()
        record = SessionRecord(
            tenant_id=tenant_id,
            id=new.id or str(uuid4()),
            user_id=new.user_id,
            agent_id=new.agent_id,
            metadata=new.metadata or {},
            created_at=at,
            updated_at=at,
        )
        async with self._db.transaction() as repos:
            if not await repos.sessions.insert(record):
                raise Conflict(f"session {record.id!r} already exists")
        return record

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord:
        async with self._db.transaction() as repos:
            found = await repos.sessions.get(tenant_id, session_id)
        if found is None:
            raise NotFound(f"session {session_id!r} not found")
        return found

    async def require(self, tenant_id: str, session_ids: Collection[str], field: str = "session_id") -> None:
        """Refuse (422) a reference to a session that does not exist in the tenant."""
        async with self._db.transaction() as repos:
            for session_id in sorted(set(session_ids)):
                if await repos.sessions.get(tenant_id, session_id) is None:
                    raise InvalidInput(f"{field}: session {session_id!r} does not exist")

    async def list(self, query: SessionQuery) -> Page[SessionRecord]:
        with checked_cursor():
            async with self._db.transaction() as repos:
                return await repos.sessions.list(query)

    async def update(self, tenant_id: str, session_id: str, changes: SessionChanges) -> SessionRecord:
        async with self._db.transaction() as repos:
            updated = await repos.sessions.update(tenant_id, session_id, changes)
        if updated is None:
            raise NotFound(f"session {session_id!r} not found")
        return updated

    async def delete(self, tenant_id: str, session_id: str) -> None:
        """Delete the session, its messages, the episodic memories made from them, and its buffer."""
        async with self._db.transaction() as repos:
            if not await repos.sessions.delete(tenant_id, session_id):
                raise NotFound(f"session {session_id!r} not found")
            episodes = await repos.episodes.derived_from(tenant_id, session_id)
            await remove(repos, episodes, "deleted", now())
        self._wake()
        await drop_buffer(self._buffer, buffer_key(tenant_id, session_id))
