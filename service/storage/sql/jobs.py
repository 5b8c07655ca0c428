"""SQL store for the job outbox: claim with a lease (SKIP LOCKED on Postgres), complete, retry.

A claim records its owner (``locked_by``) so that a restarted process can release the claims of
its dead predecessor at once (``release``) instead of waiting for their lease."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import FailedJob, Job, QueueStats
from service.storage.sql.models import JobRow
from service.storage.sql.types import in_utc

PENDING, FAILED = "pending", "failed"


@dataclass(slots=True)
class SqlJobs:
    db: AsyncSession

    async def enqueue(self, tenant_id: str, kind: str, subjects: Sequence[str], *, coalesce: bool = False) -> list[int]:
        now = datetime.now(UTC)
        if coalesce and subjects:
            subjects = await self._not_waiting(tenant_id, kind, subjects, now)
        if not subjects:
            return []
        rows = [
            {
                "tenant_id": tenant_id,
                "kind": kind,
                "subject": subject,
                "status": PENDING,
                "attempts": 0,
                "available_at": now,
                "locked_until": None,
                "locked_by": None,
                "last_error": None,
                "created_at": now,
            }
            for subject in subjects
        ]
        result = await self.db.execute(insert(JobRow).returning(JobRow.id, sort_by_parameter_order=True), rows)
        return list(result.scalars().all())

    async def claim(
        self, now: datetime, lease_seconds: float, limit: int, owner: str, kinds: Sequence[str] | None = None
    ) -> list[Job]:
        ready = select(JobRow.id).where(
            JobRow.status == PENDING,
            JobRow.available_at <= now,
            or_(JobRow.locked_until.is_(None), JobRow.locked_until < now),
        )
        if kinds is not None:
            ready = ready.where(JobRow.kind.in_(list(kinds)))
        ready = ready.order_by(JobRow.id).limit(limit).with_for_update(skip_locked=True)
        stmt = (
            update(JobRow)
            .where(JobRow.id.in_(ready.scalar_subquery()))
            .values(locked_until=now + timedelta(seconds=lease_seconds), locked_by=owner, attempts=JobRow.attempts + 1)
            .returning(JobRow.id, JobRow.tenant_id, JobRow.kind, JobRow.subject, JobRow.attempts, JobRow.created_at)
        )
        rows = (await self.db.execute(stmt, execution_options={"synchronize_session": False})).all()
        return sorted((Job(*row) for row in rows), key=lambda job: job.id)

    async def release(self, owner: str) -> int:
        """Make the pending jobs claimed by ``owner`` claimable now; returns how many there were."""
        stmt = (
            update(JobRow)
            .where(JobRow.status == PENDING, JobRow.locked_by == owner)
            .values(locked_until=None, locked_by=None)
        )
        result = await self.db.execute(stmt, execution_options={"synchronize_session": False})
        return int(getattr(result, "rowcount", 0) or 0)

    async def complete(self, ids: Sequence[int]) -> None:
        if ids:
            await self.db.execute(delete(JobRow).where(JobRow.id.in_(list(ids))))

    async def retry(self, job_id: int, error: str, available_at: datetime) -> None:
        stmt = update(JobRow).where(JobRow.id == job_id).values(
            available_at=available_at, locked_until=None, locked_by=None, last_error=error[:2000]
        )
        await self.db.execute(stmt)

    async def _not_waiting(self, tenant_id: str, kind: str, subjects: Sequence[str], now: datetime) -> list[str]:
        """The subjects (once each) with no job of ``kind`` that is ready and not yet claimed: such
        a job runs after this transaction commits, so it sees what the new one would."""
        waiting = select(JobRow.subject).where(
            JobRow.tenant_id == tenant_id,
            JobRow.kind == kind,
            JobRow.subject.in_(list(subjects)),
            JobRow.status == PENDING,
            JobRow.locked_until.is_(None),
            JobRow.available_at <= now,
        )
        found = set((await self.db.scalars(waiting)).all())
        return [subject for subject in dict.fromkeys(subjects) if subject not in found]

    async def fail(self, job_id: int, error: str) -> None:
        stmt = update(JobRow).where(JobRow.id == job_id).values(
            status=FAILED, locked_until=None, locked_by=None, last_error=error[:2000]
        )
        await self.db.execute(stmt)

    async def requeue(self, tenant_id: str, job_id: int, now: datetime) -> bool:
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.tenant_id == tenant_id, JobRow.status == FAILED)
            .values(status=PENDING, attempts=0, available_at=now, locked_until=None, locked_by=None)
        )
        result = await self.db.execute(stmt, execution_options={"synchronize_session": False})
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def failures(self, tenant_id: str, limit: int) -> list[FailedJob]:
        stmt = (
            select(JobRow)
            .where(JobRow.tenant_id == tenant_id, JobRow.status == FAILED)
            .order_by(JobRow.id.desc())
            .limit(limit)
        )
        return [
            FailedJob(r.id, r.kind, r.subject, r.attempts, r.last_error, r.created_at)
            for r in (await self.db.scalars(stmt)).all()
        ]

    async def stats(self, tenant_id: str | None = None) -> QueueStats:
        stmt = select(JobRow.status, JobRow.kind, func.count(), func.min(JobRow.created_at)).group_by(JobRow.status, JobRow.kind)
        if tenant_id is not None:
            stmt = stmt.where(JobRow.tenant_id == tenant_id)
        rows = (await self.db.execute(stmt)).all()
        by_kind = {kind: count for status, kind, count, _ in rows if status == PENDING}
        failed = sum(count for status, _, count, _ in rows if status == FAILED)
        oldest_by_kind = {kind: in_utc(at) for status, kind, _, at in rows if status == PENDING and at is not None}
        return QueueStats(
            pending=sum(by_kind.values()),
            failed=failed,
            oldest_pending=min(oldest_by_kind.values(), default=None),
            pending_by_kind=by_kind,
            oldest_by_kind=oldest_by_kind,
        )
