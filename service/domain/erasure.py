"""Erasing a user: every record of theirs leaves SQL in one transaction, then the derived stores.

SQL is the record, so the erasure is acknowledged once that transaction commits. The same
transaction queues ``erase_user`` (vector points, by the user's filter) and ``drop_buffer`` (one
per session) jobs, so the derived stores are cleaned even if this process dies right after the
commit; the request also cleans them at once, and the jobs then find nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.domain.errors import NotFound
from service.domain.sessions import buffer_key, drop_buffer
from service.storage.ports import Database, MessageBuffer, VectorIndex

ERASE_USER = "erase_user"
DROP_BUFFER = "drop_buffer"


@dataclass(frozen=True, slots=True)
class ErasedCounts:
    sessions: int
    messages: int
    memories: int
    documents: int
    vectors: int


class UserEraser:
    def __init__(self, db: Database, buffer: MessageBuffer, vectors: VectorIndex, wake: Callable[[], None]) -> None:
        self._db = db
        self._buffer = buffer
        self._vectors = vectors
        self._wake = wake

    async def erase(self, tenant_id: str, user_id: str) -> ErasedCounts:
        """Remove everything of the user from SQL, the buffer and the vector index; 404 if unknown."""
        async with self._db.transaction() as repos:
            if await repos.users.get(tenant_id, user_id) is None:
                raise NotFound(f"user {user_id!r} not found")
            erased = await repos.userdata.erase(tenant_id, user_id)
            await repos.jobs.enqueue(tenant_id, ERASE_USER, [user_id])
            await repos.jobs.enqueue(tenant_id, DROP_BUFFER, erased.session_ids)
        vectors = await self._vectors.erase_user(tenant_id, user_id)
        await self.drop_buffers(tenant_id, erased.session_ids)
        self._wake()
        return ErasedCounts(
            sessions=len(erased.session_ids),
            messages=erased.messages,
            memories=len(erased.memory_ids),
            documents=erased.documents,
            vectors=vectors,
        )

    async def erase_vectors(self, tenant_id: str, user_ids: Sequence[str]) -> None:
        """The ``erase_user`` job: every point of these users leaves the vector index."""
        for user_id in user_ids:
            await self._vectors.erase_user(tenant_id, user_id)

    async def drop_buffers(self, tenant_id: str, session_ids: Sequence[str]) -> None:
        """The ``drop_buffer`` job: these sessions' buffers leave the buffer store."""
        for session_id in session_ids:
            await drop_buffer(self._buffer, buffer_key(tenant_id, session_id))
