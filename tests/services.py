"""Where the real test servers are, and whether they answer (fail under CI=true, else skip)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def postgres_url() -> str:
    return os.environ.get("MEMORY_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("MEMORY_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> str:
    """The URL when its server answers; otherwise fail under CI=true, else skip with the reason."""
    if _reachable(url, default_port):
        return url
    message = f"{name} is not reachable at {url} (set MEMORY_TEST_{name.upper()}_URL or start it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
