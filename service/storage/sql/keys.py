"""SQL stores for tenants, API keys and the first answers of idempotent POSTs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import ApiKeyRecord, StoredAnswer, TenantRecord
from service.storage.sql.models import ApiKeyRow, IdempotentAnswerRow, TenantRow


def _key_record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        role=row.role,
        name=row.name,
        secret_hash=row.secret_hash,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _answer(row: IdempotentAnswerRow) -> StoredAnswer:
    return StoredAnswer(
        fingerprint=row.fingerprint,
        status=row.status,
        body=row.body,
        media_type=row.media_type,
        created_at=row.created_at,
    )


async def _insert_new(db: AsyncSession, statement: object) -> bool:
    """Run an insert in a savepoint; False when a row with that key already exists."""
    try:
        async with db.begin_nested():
            await db.execute(statement)  # type: ignore[call-overload]
    except IntegrityError:
        return False
    return True


@dataclass(slots=True)
class SqlTenants:
    db: AsyncSession

    async def insert(self, tenant: TenantRecord) -> bool:
        return await _insert_new(self.db, insert(TenantRow).values(id=tenant.id, created_at=tenant.created_at))

    async def get(self, tenant_id: str) -> TenantRecord | None:
        row = await self.db.get(TenantRow, tenant_id)
        return TenantRecord(row.id, row.created_at) if row else None

    async def list(self, after: str | None, limit: int) -> list[TenantRecord]:
        stmt = select(TenantRow).order_by(TenantRow.id).limit(limit)
        if after is not None:
            stmt = stmt.where(TenantRow.id > after)
        rows = (await self.db.execute(stmt)).scalars().all()
        return [TenantRecord(r.id, r.created_at) for r in rows]


@dataclass(slots=True)
class SqlKeys:
    db: AsyncSession

    async def insert(self, key: ApiKeyRecord) -> None:
        self.db.add(
            ApiKeyRow(
                id=key.id,
                tenant_id=key.tenant_id,
                role=key.role,
                name=key.name,
                secret_hash=key.secret_hash,
                prefix=key.prefix,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )
        await self.db.flush()

    async def by_hash(self, secret_hash: str) -> ApiKeyRecord | None:
        row = (await self.db.execute(select(ApiKeyRow).where(ApiKeyRow.secret_hash == secret_hash))).scalar()
        return _key_record(row) if row else None

    async def list(self, tenant_id: str | None, after: str | None, limit: int) -> list[ApiKeyRecord]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.id).limit(limit)
        if tenant_id is not None:
            stmt = stmt.where(ApiKeyRow.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(ApiKeyRow.id > after)
        return [_key_record(r) for r in (await self.db.execute(stmt)).scalars().all()]

    async def revoke(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        await self.db.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None)).values(revoked_at=at)
        )
        row = await self.db.get(ApiKeyRow, key_id, populate_existing=True)
        return _key_record(row) if row else None


@dataclass(slots=True)
class SqlAnswers:
    db: AsyncSession

    async def claim(
        self, tenant_id: str, key: str, fingerprint: str, now: datetime, stale_before: datetime
    ) -> StoredAnswer | None:
        values = {"fingerprint": fingerprint, "status": None, "body": b"", "media_type": None, "created_at": now}
        if await _insert_new(self.db, insert(IdempotentAnswerRow).values(tenant_id=tenant_id, key=key, **values)):
            return None
        row = await self.db.get(IdempotentAnswerRow, (tenant_id, key), populate_existing=True)
        if row is None:  # released between our insert and this read: report it running, a retry will own it
            return StoredAnswer(fingerprint, None, b"", None, now)
        if row.status is None and row.created_at < stale_before:
            taken = await self.db.execute(
                update(IdempotentAnswerRow)
                .where(
                    IdempotentAnswerRow.tenant_id == tenant_id,
                    IdempotentAnswerRow.key == key,
                    IdempotentAnswerRow.status.is_(None),
                    IdempotentAnswerRow.created_at == row.created_at,
                )
                .values(**values)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return None
        return _answer(row)

    async def finish(self, tenant_id: str, key: str, status: int, body: bytes, media_type: str | None) -> None:
        await self.db.execute(
            update(IdempotentAnswerRow)
            .where(IdempotentAnswerRow.tenant_id == tenant_id, IdempotentAnswerRow.key == key)
            .values(status=status, body=body, media_type=media_type)
        )

    async def release(self, tenant_id: str, key: str) -> None:
        await self.db.execute(
            delete(IdempotentAnswerRow).where(
                IdempotentAnswerRow.tenant_id == tenant_id,
                IdempotentAnswerRow.key == key,
                IdempotentAnswerRow.status.is_(None),
            )
        )

    async def purge(self, before: datetime) -> int:
        result = await self.db.execute(delete(IdempotentAnswerRow).where(IdempotentAnswerRow.created_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
