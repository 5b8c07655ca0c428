"""SQL store for long-term memories and their version history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import MemoryQuery, MemoryRecord, MemoryVersion, Page, field_values
from service.storage.sql import cursor
from service.storage.sql.models import MemoryRow, MemoryVersionRow, owned_by

_FIELDS = tuple(f for f in MemoryRecord.__dataclass_fields__ if f != "metadata")


def memory_record(row: MemoryRow) -> MemoryRecord:
    return MemoryRecord(metadata=row.metadata_, **{f: getattr(row, f) for f in _FIELDS})


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
        rows = (await self.db.scalars(select(MemoryRow).where(MemoryRow.id.in_(list(ids))))).all()
        return [memory_record(r) for r in owned_by(tenant_id, rows)]

    async def find_by_hash(self, tenant_id: str, user_id: str, type: str, hashes: Sequence[str]) -> list[MemoryRecord]:
        stmt = select(MemoryRow).where(
            MemoryRow.tenant_id == tenant_id,
            MemoryRow.user_id == user_id,
            MemoryRow.type == type,
            MemoryRow.content_hash.in_(list(hashes)),
        )
        return [memory_record(r) for r in (await self.db.scalars(stmt)).all()]

    async def list(self, query: MemoryQuery) -> Page[MemoryRecord]:
        stmt = select(MemoryRow).where(
            MemoryRow.tenant_id == query.tenant_id,
            or_(MemoryRow.expires_at.is_(None), MemoryRow.expires_at > query.alive_at),
        )
        if query.user_id is not None:
            stmt = stmt.where(MemoryRow.user_id == query.user_id)
        if query.session_id is not None:
            stmt = stmt.where(MemoryRow.session_id == query.session_id)
        if query.types:
            stmt = stmt.where(MemoryRow.type.in_(query.types))
        if query.topic is not None:
            stmt = stmt.where(MemoryRow.topic == query.topic)
        if query.after is not None:
            stmt = stmt.where(MemoryRow.event_time >= query.after)
        if query.before is not None:
            stmt = stmt.where(MemoryRow.event_time < query.before)
        if query.cursor:
            created_at, last_id = cursor.decode(f"memories:{query.tenant_id}", query.cursor)
            stmt = stmt.where(tuple_(MemoryRow.created_at, MemoryRow.id) < tuple_(created_at, str(last_id)))
        stmt = stmt.order_by(MemoryRow.created_at.desc(), MemoryRow.id.desc()).limit(query.limit + 1)
        rows = list((await self.db.scalars(stmt)).all())
        items = [memory_record(r) for r in rows[: query.limit]]
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
        stmt = (
            select(MemoryRow.speaker)
            .where(MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id, MemoryRow.speaker.is_not(None))
            .distinct()
        )
        return [s for s in (await self.db.scalars(stmt)).all() if s]


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
        stmt = select(MemoryRow).where(MemoryRow.expires_at <= now).order_by(MemoryRow.expires_at).limit(limit)
        return [memory_record(r) for r in (await self.db.scalars(stmt)).all()]

    async def scan(self, after_id: str, limit: int) -> list[MemoryRecord]:
        stmt = select(MemoryRow).where(MemoryRow.id > after_id).order_by(MemoryRow.id).limit(limit)
        return [memory_record(r) for r in (await self.db.scalars(stmt)).all()]

    async def count_by_type(self) -> dict[str, int]:
        stmt = select(MemoryRow.type, func.count()).group_by(MemoryRow.type)
        return {t: n for t, n in (await self.db.execute(stmt)).all()}
