"""A live service with API keys on, and a tenant key, for the generated clients to drive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.api.auth_fixtures import new_tenant, secured
from tests.conftest import app_for, migrated
from tests.live import live_server

#: The committed document the clients are generated from (tests/api/test_openapi.py keeps it served).
OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    key: str  # a client key of a fresh tenant


@pytest.fixture
async def served(settings: Settings, embedder: Any) -> AsyncIterator[Served]:
    settings = secured(settings)
    await migrated(settings.sql_url)
    admin_key = settings.admin_key.get_secret_value()  # type: ignore[union-attr]
    async with live_server(app_for(settings, embedder)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            tenant = await new_tenant(client, admin_key)
        yield Served(url, tenant.key)
