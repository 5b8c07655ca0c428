"""Apps that run with API keys: an admin key from MEMORY_ADMIN_KEY, and tenants with client keys."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from service.settings import Settings


def secured(settings: Settings, **changes: object) -> Settings:
    """The test's settings with keys required and a fresh MEMORY_ADMIN_KEY."""
    update = {"auth_disabled": False, "admin_key": SecretStr("adm_" + secrets.token_urlsafe(24)), **changes}
    return settings.model_copy(update=update)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


async def new_tenant(client: httpx.AsyncClient, admin_key: str, role: str = "client") -> Tenant:
    """A fresh tenant and a key of ``role`` for it, made through the admin API."""
    tenant_id = f"tn-{uuid.uuid4().hex[:10]}"
    created = await client.post("/v1/admin/tenants", json={"id": tenant_id}, headers=bearer(admin_key))
    assert created.status_code == 201, created.text
    issued = await client.post(
        "/v1/admin/keys", json={"tenant_id": tenant_id, "role": role, "name": "test"}, headers=bearer(admin_key)
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    return Tenant(tenant_id, body["key"], body["id"])


async def as_tenant(client: httpx.AsyncClient, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, with the tenant's key on every request."""
    async with httpx.AsyncClient(
        transport=client._transport, base_url=str(client.base_url), headers=tenant.headers  # noqa: SLF001
    ) as scoped:
        yield scoped
