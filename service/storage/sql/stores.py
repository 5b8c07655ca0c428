"""SQL implementations of the repo ports, one code path for Postgres and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import (
    Mark,
    MessageQuery,
    MessageRecord,
    Page,
    SessionChanges,
    SessionQuery,
    SessionRecord,
)
from service.storage.sql import cursor
from service.storage.sql.models import MESSAGE_COLUMNS, SESSION_COLUMNS, MessageRow, SessionRow, select_plain


def session_record(row: SessionRow) -> SessionRecord:
    return SessionRecord(
        tenant_id=row.tenant_id,
        id=row.id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        metadata=row.metadata_,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _message_record(row: MessageRow) -> MessageRecord:
    return MessageRecord(
        tenant_id=row.tenant_id,
        session_id=row.session_id,
        id=row.id,
        seq=row.seq,
        role=row.role,
        content=row.content,
        name=row.name,
        metadata=row.metadata_,
        created_at=row.created_at,
        token_count=row.token_count,
    )


@dataclass(slots=True)
class SqlSessions:
    db: AsyncSession

    async def insert(self, session: SessionRecord) -> bool:
        try:
            async with self.db.begin_nested():
                await self.db.execute(
                    insert(SessionRow).values(
                        tenant_id=session.tenant_id,
                        id=session.id,
                        user_id=session.user_id,
                        agent_id=session.agent_id,
                        metadata_=session.metadata,
                        created_at=session.created_at,
                        updated_at=session.updated_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        stmt = select_plain(SessionRow).where(SESSION_COLUMNS.tenant_id == tenant_id, SESSION_COLUMNS.id == session_id)
        rows = (await self.db.execute(stmt)).all()
        return session_record(rows[0]) if rows else None  # type: ignore[arg-type] - reads like a SessionRow

    async def list(self, query: SessionQuery) -> Page[SessionRecord]:
        stmt = select(SessionRow).where(SessionRow.tenant_id == query.tenant_id)
        if query.user_id is not None:
            stmt = stmt.where(SessionRow.user_id == query.user_id)
        if query.cursor:
            created_at, last_id = cursor.decode(f"sessions:{query.tenant_id}", query.cursor)
            stmt = stmt.where(tuple_(SessionRow.created_at, SessionRow.id) < tuple_(created_at, str(last_id)))
        stmt = stmt.order_by(SessionRow.created_at.desc(), SessionRow.id.desc()).limit(query.limit + 1)
        rows = list((await self.db.scalars(stmt)).all())
        items = [session_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, cursor.encode(f"sessions:{query.tenant_id}", items[-1].created_at, items[-1].id) if more else None)

    async def update(self, tenant_id: str, session_id: str, changes: SessionChanges) -> SessionRecord | None:
        values: dict[str, object] = {"updated_at": datetime.now(UTC)}
        if changes.user_id is not None:
            values["user_id"] = changes.user_id
        if changes.agent_id is not None:
            values["agent_id"] = changes.agent_id
        if changes.metadata is not None:
            values["metadata_"] = changes.metadata
        stmt = (
            update(SessionRow)
            .where(SessionRow.tenant_id == tenant_id, SessionRow.id == session_id)
            .values(**values)
            .returning(SessionRow)
        )
        row = (await self.db.scalars(stmt, execution_options={"synchronize_session": False})).one_or_none()
        return session_record(row) if row else None

    async def count(self) -> int:
        return int(await self.db.scalar(select(func.count()).select_from(SessionRow)) or 0)

    async def delete(self, tenant_id: str, session_id: str) -> bool:
        stmt = delete(SessionRow).where(SessionRow.tenant_id == tenant_id, SessionRow.id == session_id)
        result = await self.db.execute(stmt)
        return bool(result.rowcount)


@dataclass(slots=True)
class SqlMessages:
    db: AsyncSession

    async def insert_many(self, messages: Sequence[MessageRecord]) -> list[MessageRecord]:
        rows = [
            MessageRow(
                id=m.id,
                tenant_id=m.tenant_id,
                session_id=m.session_id,
                role=m.role,
                content=m.content,
                name=m.name,
                metadata_=m.metadata,
                created_at=m.created_at,
                token_count=m.token_count,
            )
            for m in messages
        ]
        self.db.add_all(rows)
        await self.db.flush()
        return [_message_record(r) for r in rows]

    async def list(self, query: MessageQuery) -> Page[MessageRecord]:
        stmt = select(MessageRow).where(
            MessageRow.tenant_id == query.tenant_id, MessageRow.session_id == query.session_id
        )
        if query.after is not None:
            stmt = stmt.where(MessageRow.created_at >= query.after)
        if query.before is not None:
            stmt = stmt.where(MessageRow.created_at < query.before)
        key = tuple_(MessageRow.created_at, MessageRow.seq)
        listing = f"messages:{query.tenant_id}:{query.session_id}:{'desc' if query.newest_first else 'asc'}"
        if query.cursor:
            created_at, last_seq = cursor.decode(listing, query.cursor, int)
            position = tuple_(created_at, int(last_seq))
            stmt = stmt.where(key < position if query.newest_first else key > position)
        if query.newest_first:
            stmt = stmt.order_by(MessageRow.created_at.desc(), MessageRow.seq.desc())
        else:
            stmt = stmt.order_by(MessageRow.created_at, MessageRow.seq)
        rows = list((await self.db.scalars(stmt.limit(query.limit + 1))).all())
        items = [_message_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, cursor.encode(listing, items[-1].created_at, items[-1].seq) if more else None)

    async def count(self) -> int:
        return int(await self.db.scalar(select(func.count()).select_from(MessageRow)) or 0)

    async def recent(self, tenant_id: str, session_id: str, limit: int) -> list[MessageRecord]:
        stmt = (
            select_plain(MessageRow)
            .where(MESSAGE_COLUMNS.tenant_id == tenant_id, MESSAGE_COLUMNS.session_id == session_id)
            .order_by(MESSAGE_COLUMNS.created_at.desc(), MESSAGE_COLUMNS.seq.desc())
            .limit(limit)
        )
        rows = (await self.db.execute(stmt)).all()
        return [_message_record(r) for r in reversed(rows)]  # type: ignore[arg-type] - reads like a MessageRow

    async def after(self, tenant_id: str, session_id: str, mark: Mark | None, limit: int) -> list[MessageRecord]:
        stmt = select(MessageRow).where(MessageRow.tenant_id == tenant_id, MessageRow.session_id == session_id)
        if mark is not None:
            stmt = stmt.where(tuple_(MessageRow.created_at, MessageRow.seq) > tuple_(mark.at, mark.seq))
        stmt = stmt.order_by(MessageRow.created_at, MessageRow.seq).limit(limit)
        return [_message_record(r) for r in (await self.db.scalars(stmt)).all()]
