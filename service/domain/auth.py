"""API keys and tenants: who is calling, for which tenant, in which role.

A key is a random secret shown once; only its SHA-256 is stored (a key has 256 bits of entropy,
so a slow password hash adds nothing). Every request looks its key up, so a revoked key stops
working at once in every process.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

from service.domain import clock
from service.domain.errors import Conflict, NotFound, Unauthorized
from service.storage.ports import Database
from service.storage.records import ApiKeyRecord, Page, TenantRecord

KEY_PREFIX = "msk_"
#: The name of the key that ``MEMORY_ADMIN_KEY`` installs (an older value of it is revoked).
BOOTSTRAP_NAME = "MEMORY_ADMIN_KEY"


class Role(StrEnum):
    admin = "admin"  # manages tenants and keys, and may use the data API of its own tenant
    client = "client"  # uses the data API of its tenant


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request."""

    tenant_id: str
    role: Role
    key_id: str | None  # None when authentication is disabled


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    record: ApiKeyRecord
    secret: str  # shown to the caller once, never stored


def _page(items: list[ApiKeyRecord] | list[TenantRecord], limit: int) -> Page:  # type: ignore[type-arg]
    more = len(items) > limit
    kept = items[:limit]
    return Page(items=kept, next_cursor=kept[-1].id if more and kept else None)


class KeyService:
    """Tenants and keys: creation, listing, revocation, and the look-up behind every request."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_tenant(self, tenant_id: str) -> TenantRecord:
        tenant = TenantRecord(tenant_id, clock.now())
        async with self._db.transaction() as repos:
            if not await repos.tenants.insert(tenant):
                raise Conflict(f"tenant {tenant_id!r} already exists")
        return tenant

    async def ensure_tenant(self, tenant_id: str) -> None:
        async with self._db.transaction() as repos:
            await repos.tenants.insert(TenantRecord(tenant_id, clock.now()))

    async def list_tenants(self, cursor: str | None, limit: int) -> Page[TenantRecord]:
        async with self._db.transaction() as repos:
            return _page(await repos.tenants.list(cursor, limit + 1), limit)

    async def create_key(self, tenant_id: str, role: Role, name: str | None = None) -> IssuedKey:
        secret = new_secret()
        record = ApiKeyRecord(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            role=role.value,
            name=name,
            secret_hash=hash_secret(secret),
            prefix=secret[: len(KEY_PREFIX) + 6],
            created_at=clock.now(),
        )
        async with self._db.transaction() as repos:
            if await repos.tenants.get(tenant_id) is None:
                raise NotFound(f"tenant {tenant_id!r} does not exist")
            await repos.keys.insert(record)
        return IssuedKey(record, secret)

    async def list_keys(self, tenant_id: str | None, cursor: str | None, limit: int) -> Page[ApiKeyRecord]:
        async with self._db.transaction() as repos:
            return _page(await repos.keys.list(tenant_id, cursor, limit + 1), limit)

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        async with self._db.transaction() as repos:
            record = await repos.keys.revoke(key_id, clock.now())
        if record is None:
            raise NotFound(f"key {key_id!r} does not exist")
        return record

    async def authenticate(self, secret: str) -> Principal:
        """The principal of a presented secret; ``Unauthorized`` for an unknown or revoked one."""
        async with self._db.transaction() as repos:
            record = await repos.keys.by_hash(hash_secret(secret))
        if record is None or record.revoked_at is not None:
            raise Unauthorized("the API key is not valid (unknown or revoked)")
        return Principal(record.tenant_id, Role(record.role), record.id)

    async def bootstrap(self, secret: str, tenant_id: str) -> None:
        """Install ``MEMORY_ADMIN_KEY`` as an admin key of ``tenant_id``; revoke an earlier value of it."""
        digest = hash_secret(secret)
        async with self._db.transaction() as repos:
            await repos.tenants.insert(TenantRecord(tenant_id, clock.now()))
            current = await repos.keys.by_hash(digest)
            for old in await repos.keys.list(None, None, 10_000):
                if old.name == BOOTSTRAP_NAME and old.secret_hash != digest and old.revoked_at is None:
                    await repos.keys.revoke(old.id, clock.now())
            if current is None:
                await repos.keys.insert(
                    ApiKeyRecord(
                        id=str(uuid.uuid4()),
                        tenant_id=tenant_id,
                        role=Role.admin.value,
                        name=BOOTSTRAP_NAME,
                        secret_hash=digest,
                        prefix="(env)",
                        created_at=clock.now(),
                    )
                )
