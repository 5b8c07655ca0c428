"""SQL for the retention policy: the oldest records past a cut-off, and their removal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.sql.models import MemoryRow, MemoryTermRow, MemoryVersionRow, MessageRow


@dataclass(slots=True)
class SqlRetention:
    db: AsyncSession

    async def purge_messages(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete up to ``limit`` messages created before ``before``; each one's (tenant, session)."""
        stmt = select(MessageRow.seq, MessageRow.tenant_id, MessageRow.session_id).where(MessageRow.created_at < before)
        rows = (await self.db.execute(stmt.order_by(MessageRow.created_at).limit(limit))).all()
        if rows:
            await self.db.execute(delete(MessageRow).where(MessageRow.seq.in_([r.seq for r in rows])))
        return [(r.tenant_id, r.session_id) for r in rows]

    async def purge_memories(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete up to ``limit`` memories created before ``before``, with their versions and terms;
        the (tenant, id) of each (their vectors follow through the outbox)."""
        stmt = select(MemoryRow.tenant_id, MemoryRow.id).where(MemoryRow.created_at < before)
        rows = [(r.tenant_id, r.id) for r in (await self.db.execute(stmt.order_by(MemoryRow.created_at).limit(limit))).all()]
        ids = [memory_id for _, memory_id in rows]
        if ids:
            await self.db.execute(delete(MemoryTermRow).where(MemoryTermRow.memory_id.in_(ids)))
            await self.db.execute(delete(MemoryVersionRow).where(MemoryVersionRow.memory_id.in_(ids)))
            await self.db.execute(delete(MemoryRow).where(MemoryRow.id.in_(ids)))
        return rows
