"""The admin API's shapes: tenants and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from service.domain.auth import Role
from service.schemas.common import RecordModel

TenantId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"),
    Field(description="A tenant's id: 1-64 letters, digits, '_', '.' or '-'."),
]


class TenantCreate(BaseModel):
    id: TenantId


class Tenant(RecordModel):
    id: str
    created_at: datetime


class KeyCreate(BaseModel):
    tenant_id: TenantId
    role: Role = Field(Role.client, description="`client` uses the data API; `admin` manages tenants and keys.")
    name: Annotated[str | None, StringConstraints(min_length=1, max_length=128)] = Field(
        None, description="A label for people (who or what uses the key)."
    )


class ApiKey(RecordModel):
    """An API key as listed: never its secret."""

    id: str
    tenant_id: str
    role: Role
    name: str | None
    prefix: str = Field(description="The secret's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The secret, shown only in this answer: send it as `Authorization: Bearer <key>`.")
