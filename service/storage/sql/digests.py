"""SQL stores for session digests, the keyword index and episode look-ups by turn position."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import Mark, MemoryRecord, Progress, SessionDigest
from service.storage.sql.memories import read_memories, select_memories
from service.storage.sql.models import (
    DIGEST_COLUMNS,
    MEMORY_COLUMNS,
    MemoryRow,
    MemoryTermRow,
    SessionDigestRow,
    select_plain,
)

_STEPS = ("summarized", "condensed", "extracted")


def _progress(row: SessionDigestRow, step: str) -> Progress:
    at, seq = getattr(row, f"{step}_at"), getattr(row, f"{step}_seq")
    until = Mark(at, seq) if at is not None and seq is not None else None
    return Progress(count=getattr(row, f"{step}_count"), until=until)


def _digest(row: SessionDigestRow) -> SessionDigest:
    return SessionDigest(
        tenant_id=row.tenant_id,
        session_id=row.session_id,
        summary=row.summary,
        summary_tokens=row.summary_tokens,
        summary_at=row.summary_at,
        summarized=_progress(row, "summarized"),
        condensed=_progress(row, "condensed"),
        extracted=_progress(row, "extracted"),
        updated_at=row.updated_at,
    )


def _progress_values(digest: SessionDigest) -> dict[str, object]:
    values: dict[str, object] = {}
    for step in _STEPS:
        progress: Progress = getattr(digest, step)
        values[f"{step}_count"] = progress.count
        values[f"{step}_at"] = progress.until.at if progress.until else None
        values[f"{step}_seq"] = progress.until.seq if progress.until else None
    return values


@dataclass(slots=True)
class SqlDigests:
    db: AsyncSession

    async def get(self, tenant_id: str, session_id: str) -> SessionDigest | None:
        stmt = select_plain(SessionDigestRow).where(
            DIGEST_COLUMNS.tenant_id == tenant_id, DIGEST_COLUMNS.session_id == session_id
        )
        rows = (await self.db.execute(stmt)).all()
        return _digest(rows[0]) if rows else None  # type: ignore[arg-type] - reads like a SessionDigestRow

    async def save(self, digest: SessionDigest) -> None:
        """Insert or overwrite the digest of its session (the caller holds the session's job)."""
        values = {
            "summary": digest.summary,
            "summary_tokens": digest.summary_tokens,
            "summary_at": digest.summary_at,
            **_progress_values(digest),
        }
        row = await self.db.get(SessionDigestRow, (digest.tenant_id, digest.session_id))
        if row is None:
            self.db.add(SessionDigestRow(tenant_id=digest.tenant_id, session_id=digest.session_id, updated_at=digest.updated_at, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = digest.updated_at  # type: ignore[assignment]
        await self.db.flush()


@dataclass(slots=True)
class SqlTerms:
    db: AsyncSession

    async def add(self, tenant_id: str, user_id: str, memory_id: str, terms: Sequence[str]) -> None:
        rows = [{"tenant_id": tenant_id, "user_id": user_id, "term": t, "memory_id": memory_id} for t in dict.fromkeys(terms)]
        if rows:
            await self.db.execute(insert(MemoryTermRow), rows)

    async def lookup(self, tenant_id: str, user_id: str, terms: Sequence[str], limit: int) -> dict[str, int]:
        """Memory id -> how many of ``terms`` it is indexed under, best first."""
        if not terms:
            return {}
        # The primary key's order (tenant, user, term), the counting here: with GROUP BY memory_id
        # in SQL, SQLite walked the tenant's (tenant_id, memory_id) index instead.
        table = MemoryTermRow.__table__.c
        stmt = select(table.memory_id).where(
            table.tenant_id == tenant_id, table.user_id == user_id, table.term.in_(list(dict.fromkeys(terms)))
        )
        matched = Counter(row.memory_id for row in (await self.db.execute(stmt)).all())
        best = sorted(matched.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]
        return dict(best)

    async def delete(self, tenant_id: str, memory_ids: Sequence[str]) -> None:
        if memory_ids:
            stmt = delete(MemoryTermRow).where(
                MemoryTermRow.tenant_id == tenant_id, MemoryTermRow.memory_id.in_(list(memory_ids))
            )
            await self.db.execute(stmt)


@dataclass(slots=True)
class SqlEpisodes:
    """Memories made from a session's messages, addressed by their turn position."""

    db: AsyncSession

    async def last_position(self, tenant_id: str, session_id: str) -> int | None:
        stmt = select(func.max(MemoryRow.position)).where(
            MemoryRow.tenant_id == tenant_id, MemoryRow.session_id == session_id
        )
        return await self.db.scalar(stmt)

    async def at_positions(self, tenant_id: str, positions: Sequence[tuple[str, int]]) -> list[MemoryRecord]:
        if not positions:
            return []
        # One index seek per session, each term naming the index's columns in order (SQLite's
        # MULTI-INDEX OR): a row-value IN of (session_id, position) walked the whole tenant, and
        # sessions IN x positions IN read (and built records of) every pair of the cross product.
        by_session: dict[str, set[int]] = {}
        for session_id, position in positions:
            by_session.setdefault(session_id, set()).add(position)
        stmt = select_memories().where(
            or_(
                *(
                    and_(
                        MEMORY_COLUMNS.tenant_id == tenant_id,
                        MEMORY_COLUMNS.session_id == session_id,
                        MEMORY_COLUMNS.position.in_(sorted(wanted)),
                    )
                    for session_id, wanted in sorted(by_session.items())
                )
            )
        )
        return await read_memories(self.db, stmt)

    async def derived_from(self, tenant_id: str, session_id: str) -> list[MemoryRecord]:
        """The session's episodes and the summary memories condensed from them."""
        stmt = select_memories().where(
            MEMORY_COLUMNS.tenant_id == tenant_id,
            MEMORY_COLUMNS.session_id == session_id,
            (MEMORY_COLUMNS.position.is_not(None)) | (MEMORY_COLUMNS.type == "summary"),
        )
        return await read_memories(self.db, stmt)
