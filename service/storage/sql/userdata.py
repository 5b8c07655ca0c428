"""A user's records as a whole, for governance: export pages, idempotent restore, erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import Erased, MemoryRecord, MemoryVersion, MessageRecord, SessionRecord, field_values
from service.storage.sql.memories import SqlMemories, read_memories, select_memories
from service.storage.sql.models import (
    MEMORY_COLUMNS,
    DocumentChunkRow,
    DocumentRow,
    MemoryRow,
    MemoryTermRow,
    MemoryVersionRow,
    MessageRow,
    SessionRow,
    UserProfileRow,
)
from service.storage.sql.stores import SqlMessages, SqlSessions, session_record


def _version(row: MemoryVersionRow) -> MemoryVersion:
    return MemoryVersion(row.memory_id, row.version, row.op, row.changes, row.snapshot, row.at)


@dataclass(slots=True)
class SqlUserData:
    db: AsyncSession

    async def sessions(self, tenant_id: str, user_id: str) -> list[SessionRecord]:
        stmt = (
            select(SessionRow)
            .where(SessionRow.tenant_id == tenant_id, SessionRow.user_id == user_id)
            .order_by(SessionRow.created_at, SessionRow.id)
        )
        return [session_record(r) for r in (await self.db.scalars(stmt)).all()]

    async def memories(self, tenant_id: str, user_id: str, after_id: str | None, limit: int) -> list[MemoryRecord]:
        """Every memory of the user (expired ones too), in id order after ``after_id``."""
        stmt = select_memories().where(MEMORY_COLUMNS.tenant_id == tenant_id, MEMORY_COLUMNS.user_id == user_id)
        if after_id is not None:
            stmt = stmt.where(MEMORY_COLUMNS.id > after_id)
        return await read_memories(self.db, stmt.order_by(MEMORY_COLUMNS.id).limit(limit))

    async def versions(
        self, tenant_id: str, user_id: str, after: tuple[str, int] | None, limit: int
    ) -> list[MemoryVersion]:
        """Every version of the user's memories, deleted ones' included, by (memory, version)."""
        stmt = select(MemoryVersionRow).where(
            MemoryVersionRow.tenant_id == tenant_id, MemoryVersionRow.user_id == user_id
        )
        if after is not None:
            stmt = stmt.where(tuple_(MemoryVersionRow.memory_id, MemoryVersionRow.version) > tuple_(*after))
        stmt = stmt.order_by(MemoryVersionRow.memory_id, MemoryVersionRow.version, MemoryVersionRow.id).limit(limit)
        return [_version(r) for r in (await self.db.scalars(stmt)).all()]

    async def restore_sessions(self, sessions: Sequence[SessionRecord]) -> int:
        """Insert the sessions that are not there yet (by tenant and id); how many were new."""
        store = SqlSessions(self.db)
        return sum([await store.insert(s) for s in sessions])

    async def restore_messages(self, messages: Sequence[MessageRecord]) -> int:
        """Insert the messages whose id is new, in the given order (their ``seq`` is assigned)."""
        if not messages:
            return 0
        known = set(
            (await self.db.scalars(select(MessageRow.id).where(MessageRow.id.in_([m.id for m in messages])))).all()
        )
        fresh = [m for m in messages if m.id not in known]
        await SqlMessages(self.db).insert_many(fresh)  # in the stream's order: seq follows it
        return len(fresh)

    async def restore_memories(self, memories: Sequence[MemoryRecord]) -> list[str]:
        """Insert the memories whose id is new; their ids."""
        if not memories:
            return []
        known = set((await self.db.scalars(select(MemoryRow.id).where(MemoryRow.id.in_([m.id for m in memories])))).all())
        fresh = [m for m in memories if m.id not in known]
        await SqlMemories(self.db).insert_many(fresh)
        return [m.id for m in fresh]

    async def restore_versions(self, tenant_id: str, user_id: str, versions: Sequence[MemoryVersion]) -> int:
        """Insert the versions not there yet (by memory id and version number)."""
        if not versions:
            return 0
        ids = sorted({v.memory_id for v in versions})
        stmt = select(MemoryVersionRow.memory_id, MemoryVersionRow.version).where(
            MemoryVersionRow.tenant_id == tenant_id, MemoryVersionRow.memory_id.in_(ids)
        )
        known = {(m, v) for m, v in (await self.db.execute(stmt)).all()}
        fresh = [v for v in versions if (v.memory_id, v.version) not in known]
        for v in fresh:
            self.db.add(MemoryVersionRow(tenant_id=tenant_id, user_id=user_id, **field_values(v)))
        await self.db.flush()
        return len(fresh)

    async def erase(self, tenant_id: str, user_id: str) -> Erased:
        """Delete every SQL row of the user: sessions (with their messages and digests), memories,
        their versions and keyword terms, the user's documents (with chunks) and profile."""
        session_ids = [s.id for s in await self.sessions(tenant_id, user_id)]
        messages = await self._count(
            select(func.count()).select_from(MessageRow).where(
                MessageRow.tenant_id == tenant_id, MessageRow.session_id.in_(session_ids)
            )
        )
        memory_ids = list(
            (await self.db.scalars(select(MemoryRow.id).where(MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id))).all()
        )
        doc_ids = list(
            (await self.db.scalars(select(DocumentRow.id).where(DocumentRow.tenant_id == tenant_id, DocumentRow.user_id == user_id))).all()
        )
        chunk_ids = list(
            (await self.db.scalars(select(DocumentChunkRow.id).where(DocumentChunkRow.tenant_id == tenant_id, DocumentChunkRow.document_id.in_(doc_ids)))).all()
        )
        await self.db.execute(delete(MemoryTermRow).where(MemoryTermRow.tenant_id == tenant_id, MemoryTermRow.user_id == user_id))
        versions = await self.db.execute(
            delete(MemoryVersionRow).where(MemoryVersionRow.tenant_id == tenant_id, MemoryVersionRow.user_id == user_id)
        )
        await self.db.execute(delete(MemoryRow).where(MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id))
        await self.db.execute(delete(MessageRow).where(MessageRow.tenant_id == tenant_id, MessageRow.session_id.in_(session_ids)))
        await self.db.execute(delete(SessionRow).where(SessionRow.tenant_id == tenant_id, SessionRow.user_id == user_id))
        await self.db.execute(delete(DocumentChunkRow).where(DocumentChunkRow.tenant_id == tenant_id, DocumentChunkRow.document_id.in_(doc_ids)))
        await self.db.execute(delete(DocumentRow).where(DocumentRow.tenant_id == tenant_id, DocumentRow.user_id == user_id))
        profile = await self.db.execute(
            delete(UserProfileRow).where(UserProfileRow.tenant_id == tenant_id, UserProfileRow.user_id == user_id)
        )
        return Erased(
            session_ids=session_ids,
            messages=messages,
            memory_ids=memory_ids,
            versions=_inserted(versions, 0),
            documents=len(doc_ids),
            chunk_ids=chunk_ids,
            profile=_inserted(profile, 0) > 0,
        )

    async def _count(self, stmt: object) -> int:
        return int((await self.db.execute(stmt)).scalar_one())  # type: ignore[call-overload]


def _inserted(result: object, default: int) -> int:
    """Rows a statement changed, where the driver tells (else ``default``)."""
    count = getattr(result, "rowcount", None)
    return int(count) if count is not None and count >= 0 else default
