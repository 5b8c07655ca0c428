"""SQL store for long-term memories and their version history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import MemoryQuery, MemoryRecord, MemoryVersion, Page, field_values
from service.storage.sql import cursor
from service.storage.sql.models import MEMORY_COLUMNS, MemoryRow, MemoryVersionRow, owned_by

#: The memories table's columns in ``MemoryRecord``'s field order (the fields are its column names).
_COLUMNS = tuple(MemoryRow.__table__.c[name] for name in MemoryRecord.__dataclass_fields__)


def select_memories() -> Select[tuple[object, ...]]:
    """A Core select of whole memory rows as plain tuples in ``MemoryRecord``'s field order.

    Reads skip the ORM: loading ORM objects (identity map, instance state, then a copy into a
    record) was a fifth of a context call's CPU, for rows that are never written back."""
    return select(*_COLUMNS)


async def read_memories(db: AsyncSession, stmt: Select[tuple[object, ...]]) -> list[MemoryRecord]:
    """The records of a :func:`select_memories` statement."""
    return [MemoryRecord(*row) for row in (await db.execute(stmt)).all()]


@dataclass(slots=True)
class SqlMemories:
    db: AsyncSession

    async def insert_many(self, memories: Sequence[MemoryRecord]) -> None:
        if memories:
            # A Core insert of the table (the record's fields are its column names): the ORM's
            # bulk path cost a tenth of a bulk import.
            await self.db.execute(insert(MemoryRow.__table__), [field_values(m) for m in memories])

    async def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        return owned_by(tenant_id, await read_memories(self.db, select_memories().where(MEMORY_COLUMNS.id.in_(list(ids)))))

    async def find_by_hash(self, tenant_id: str, user_id: str, type: str, hashes: Sequence[str]) -> list[MemoryRecord]:
        stmt = select_memories().where(
            MEMORY_COLUMNS.tenant_id == tenant_id,
            MEMORY_COLUMNS.user_id == user_id,
            MEMORY_COLUMNS.type == type,
            MEMORY_COLUMNS.content_hash.in_(list(hashes)),
        )
        return await read_memories(self.db, stmt)

    async def list(self, query: MemoryQuery) -> Page[MemoryRecord]:
        stmt = select_memories().where(
            MEMORY_COLUMNS.tenant_id == query.tenant_id,
            or_(MEMORY_COLUMNS.expires_at.is_(None), MEMORY_COLUMNS.expires_at > query.alive_at),
        )
        if query.user_id is not None:
            stmt = stmt.where(MEMORY_COLUMNS.user_id == query.user_id)
        if query.session_id is not None:
            stmt = stmt.where(MEMORY_COLUMNS.session_id == query.session_id)
        if query.types:
            stmt = stmt.where(MEMORY_COLUMNS.type.in_(query.types))
        if query.topic is not None:
            stmt = stmt.where(MEMORY_COLUMNS.topic == query.topic)
        if query.after is not None:
            stmt = stmt.where(MEMORY_COLUMNS.event_time >= query.after)
        if query.before is not None:
            stmt = stmt.where(MEMORY_COLUMNS.event_time < query.before)
        if query.cursor:
            created_at, last_id = cursor.decode(f"memories:{query.tenant_id}", query.cursor)
            stmt = stmt.where(tuple_(MEMORY_COLUMNS.created_at, MEMORY_COLUMNS.id) < tuple_(created_at, str(last_id)))
        stmt = stmt.order_by(MEMORY_COLUMNS.created_at.desc(), MEMORY_COLUMNS.id.desc()).limit(query.limit + 1)
        rows = await read_memories(self.db, stmt)
        items = rows[: query.limit]
        more = len(rows) > query.limit
        return Page(items, cursor.encode(f"memories:{query.tenant_id}", items[-1].created_at, items[-1].id) if more else None)

    async def replace(self, memory: MemoryRecord) -> None:
        row = await self.db.get(MemoryRow, memory.id)
        if row is None or row.tenant_id != memory.tenant_id:
            raise LookupError(memory.id)
        for name, value in field_values(memory).items():
            setattr(row, "metadata_" if name == "metadata" else name, value)
        await self.db.flush()

    async def delete_many(self, tenant_id: str, ids: Sequence[str]) -> None:
        if ids:
            found = (await self.db.execute(select(MemoryRow.id, MemoryRow.tenant_id).where(MemoryRow.id.in_(list(ids))))).all()
            mine = [row.id for row in owned_by(tenant_id, found)]
            if mine:
                await self.db.execute(delete(MemoryRow).where(MemoryRow.id.in_(mine)))

    async def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        table = MemoryRow.__table__.c
        stmt = (
            select(table.speaker)
            .where(table.tenant_id == tenant_id, table.user_id == user_id, table.speaker.is_not(None))
            .distinct()
        )
        return [row.speaker for row in (await self.db.execute(stmt)).all() if row.speaker]


@dataclass(slots=True)
class SqlMemoryVersions:
    """The history of memories (the ``VersionRepo`` port)."""

    db: AsyncSession

    async def add(self, tenant_id: str, versions: Sequence[MemoryVersion]) -> None:
        if versions:
            rows = [{"tenant_id": tenant_id, "user_id": v.snapshot.get("user_id"), **field_values(v)} for v in versions]
            await self.db.execute(insert(MemoryVersionRow.__table__), rows)

    async def history(self, tenant_id: str, memory_id: str) -> list[MemoryVersion]:
        stmt = (
            select(MemoryVersionRow)
            .where(MemoryVersionRow.tenant_id == tenant_id, MemoryVersionRow.memory_id == memory_id)
            .order_by(MemoryVersionRow.version, MemoryVersionRow.id)
        )
        return [
            MemoryVersion(r.memory_id, r.version, r.op, r.changes, r.snapshot, r.at)
            for r in (await self.db.scalars(stmt)).all()
        ]


@dataclass(slots=True)
class SqlMemoryUpkeep:
    """Memories across every tenant, for background upkeep (the ``MemoryUpkeepRepo`` port)."""

    db: AsyncSession

    async def expired(self, now: datetime, limit: int) -> list[MemoryRecord]:
        stmt = select_memories().where(MEMORY_COLUMNS.expires_at <= now).order_by(MEMORY_COLUMNS.expires_at).limit(limit)
        return await read_memories(self.db, stmt)

    async def scan(self, after_id: str, limit: int) -> list[MemoryRecord]:
        stmt = select_memories().where(MEMORY_COLUMNS.id > after_id).order_by(MEMORY_COLUMNS.id).limit(limit)
        return await read_memories(self.db, stmt)

    async def count_by_type(self) -> dict[str, int]:
        stmt = select(MemoryRow.type, func.count()).group_by(MemoryRow.type)
        return {t: n for t, n in (await self.db.execute(stmt)).all()}
