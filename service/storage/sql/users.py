"""SQL stores for users (derived from the tables that name them) and their profiles.

A user has no table: whoever has a session, memory, document or profile row in the tenant is one.
Listing takes the union of each table's distinct user ids after the cursor (each an index scan on
``(tenant_id, user_id, ...)`` that stops after ``limit`` ids), then counts for just that page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, or_, select, union, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import MemoryRecord, ProfileRecord, UserSummary
from service.storage.sql.memories import read_memories, select_memories
from service.storage.sql.models import (
    MEMORY_COLUMNS,
    PROFILE_COLUMNS,
    DocumentRow,
    MemoryRow,
    MessageRow,
    SessionRow,
    UserProfileRow,
    select_plain,
)

#: The tables that name a user, with the column that does.
_USER_COLUMNS = (SessionRow.user_id, MemoryRow.user_id, DocumentRow.user_id, UserProfileRow.user_id)


def _ids_after(column: Any, tenant_id: str, after: str | None, limit: int) -> Select[Any]:
    """The first ``limit`` distinct user ids of one table after ``after``, in id order."""
    table = column.class_
    stmt = select(column.label("user_id")).where(table.tenant_id == tenant_id, column.is_not(None))
    if after is not None:
        stmt = stmt.where(column > after)
    return stmt.distinct().order_by(column).limit(limit)


@dataclass(slots=True)
class _Stats:
    sessions: int = 0
    messages: int = 0
    memories: int = 0
    documents: int = 0
    seen: list[datetime] = field(default_factory=list)


def _stats_query(tenant_id: str, user_ids: Sequence[str], alive_at: datetime) -> Any:
    """One row per (user, table) the user appears in: (user_id, kind, count, first, last)."""
    ids = list(user_ids)
    alive = or_(MemoryRow.expires_at.is_(None), MemoryRow.expires_at > alive_at)
    sessions = select(
        SessionRow.user_id, literal("sessions"), func.count(), func.min(SessionRow.created_at), func.max(SessionRow.updated_at)
    ).where(SessionRow.tenant_id == tenant_id, SessionRow.user_id.in_(ids)).group_by(SessionRow.user_id)
    messages = (
        select(SessionRow.user_id, literal("messages"), func.count(), func.min(MessageRow.created_at), func.max(MessageRow.created_at))
        .join(MessageRow, (MessageRow.tenant_id == SessionRow.tenant_id) & (MessageRow.session_id == SessionRow.id))
        .where(SessionRow.tenant_id == tenant_id, SessionRow.user_id.in_(ids))
        .group_by(SessionRow.user_id)
    )
    memories = select(
        MemoryRow.user_id,
        literal("memories"),
        func.sum(case((alive, 1), else_=0)),
        func.min(MemoryRow.created_at),
        func.max(MemoryRow.updated_at),
    ).where(MemoryRow.tenant_id == tenant_id, MemoryRow.user_id.in_(ids)).group_by(MemoryRow.user_id)
    documents = select(
        DocumentRow.user_id, literal("documents"), func.count(), func.min(DocumentRow.created_at), func.max(DocumentRow.updated_at)
    ).where(DocumentRow.tenant_id == tenant_id, DocumentRow.user_id.in_(ids)).group_by(DocumentRow.user_id)
    profiles = select(
        UserProfileRow.user_id, literal("profile"), literal(0), UserProfileRow.created_at, UserProfileRow.updated_at
    ).where(UserProfileRow.tenant_id == tenant_id, UserProfileRow.user_id.in_(ids))
    return union_all(sessions, messages, memories, documents, profiles)


@dataclass(slots=True)
class SqlUsers:
    db: AsyncSession

    async def get(self, tenant_id: str, user_id: str, alive_at: datetime | None = None) -> UserSummary | None:
        found = await self._summaries(tenant_id, [user_id], alive_at)
        return found[0] if found else None

    async def list(
        self, tenant_id: str, after: str | None, limit: int, alive_at: datetime | None = None
    ) -> list[UserSummary]:
        parts = [_ids_after(column, tenant_id, after, limit).subquery() for column in _USER_COLUMNS]
        ids = union(*(select(part.c.user_id) for part in parts)).subquery()
        page = select(ids.c.user_id).order_by(ids.c.user_id).limit(limit)
        user_ids = list((await self.db.scalars(page)).all())
        return await self._summaries(tenant_id, user_ids, alive_at)

    async def _summaries(self, tenant_id: str, user_ids: Sequence[str], alive_at: datetime | None) -> list[UserSummary]:
        if not user_ids:
            return []
        rows = (await self.db.execute(_stats_query(tenant_id, user_ids, alive_at or datetime.now(UTC)))).all()
        stats: dict[str, _Stats] = {}
        for user_id, kind, count, first, last in rows:
            entry = stats.setdefault(user_id, _Stats())
            if kind != "profile":
                setattr(entry, kind, int(count or 0))
            entry.seen += [first, last]
        return [
            UserSummary(
                tenant_id=tenant_id,
                id=user_id,
                session_count=s.sessions,
                message_count=s.messages,
                memory_count=s.memories,
                document_count=s.documents,
                first_seen=min(s.seen),
                last_seen=max(s.seen),
            )
            for user_id in user_ids
            if (s := stats.get(user_id)) is not None
        ]


def _profile(row: UserProfileRow) -> ProfileRecord:
    return ProfileRecord(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        fields=row.fields,
        facts=row.facts,
        topics=row.topics,
        created_at=row.created_at,
        updated_at=row.updated_at,
        derived_at=row.derived_at,
    )


@dataclass(slots=True)
class SqlProfiles:
    db: AsyncSession

    async def get(self, tenant_id: str, user_id: str, for_update: bool = False) -> ProfileRecord | None:
        stmt = select_plain(UserProfileRow).where(PROFILE_COLUMNS.tenant_id == tenant_id, PROFILE_COLUMNS.user_id == user_id)
        if for_update:
            stmt = stmt.with_for_update()  # Postgres locks the row; SQLite has one writer anyway
        rows = (await self.db.execute(stmt)).all()
        return _profile(rows[0]) if rows else None  # type: ignore[arg-type] - reads like a UserProfileRow

    async def save(self, profile: ProfileRecord) -> None:
        values = {
            "fields": profile.fields,
            "facts": profile.facts,
            "topics": profile.topics,
            "updated_at": profile.updated_at,
            "derived_at": profile.derived_at,
        }
        if not await self._update(profile.tenant_id, profile.user_id, values):
            await self._insert(profile, values)

    async def save_derived(
        self, tenant_id: str, user_id: str, facts: list[dict[str, Any]], topics: list[dict[str, Any]], at: datetime
    ) -> None:
        values = {"facts": facts, "topics": topics, "derived_at": at}
        if not await self._update(tenant_id, user_id, values):
            blank = ProfileRecord(tenant_id, user_id, {}, facts, topics, at, at, at)
            await self._insert(blank, values)

    async def delete(self, tenant_id: str, user_id: str) -> bool:
        row = await self.db.get(UserProfileRow, (tenant_id, user_id))
        if row is None:
            return False
        await self.db.delete(row)
        await self.db.flush()
        return True

    async def top_facts(
        self, tenant_id: str, user_id: str, types: Sequence[str], alive_at: datetime, limit: int
    ) -> list[MemoryRecord]:
        stmt = (
            select_memories()
            .where(
                MEMORY_COLUMNS.tenant_id == tenant_id,
                MEMORY_COLUMNS.user_id == user_id,
                MEMORY_COLUMNS.type.in_(list(types)),
                or_(MEMORY_COLUMNS.expires_at.is_(None), MEMORY_COLUMNS.expires_at > alive_at),
            )
            .order_by(MEMORY_COLUMNS.importance.desc(), MEMORY_COLUMNS.updated_at.desc(), MEMORY_COLUMNS.id)
            .limit(limit)
        )
        return await read_memories(self.db, stmt)

    async def _update(self, tenant_id: str, user_id: str, values: dict[str, Any]) -> bool:
        stmt = (
            update(UserProfileRow)
            .where(UserProfileRow.tenant_id == tenant_id, UserProfileRow.user_id == user_id)
            .values(**values)
        )
        result = await self.db.execute(stmt, execution_options={"synchronize_session": False})
        return bool(getattr(result, "rowcount", 0))

    async def _insert(self, profile: ProfileRecord, values: dict[str, Any]) -> None:
        """Insert the row; when a concurrent writer inserted it first, update theirs instead."""
        try:
            async with self.db.begin_nested():
                self.db.add(
                    UserProfileRow(
                        tenant_id=profile.tenant_id,
                        user_id=profile.user_id,
                        created_at=profile.created_at,
                        **{"fields": profile.fields, "updated_at": profile.updated_at, **values},
                    )
                )
        except IntegrityError:
            await self._update(profile.tenant_id, profile.user_id, values)
