"""Helpers shared by the deployment-file tests: the repo root and the settings env names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]

# Settings the deployment files already use but `Settings` does not define yet. Remove a name
# here as soon as the field exists: the tests then hold the files to the real field.
PENDING_SETTINGS: frozenset[str] = frozenset()

ENV_PREFIX = "MEMORY_"

# MEMORY_* variables read outside Settings (service/storage/sql/migrate.py reads this one).
NON_SETTINGS_ENV: frozenset[str] = frozenset({"MEMORY_MIGRATIONS_DIR"})


def settings_env_names() -> set[str]:
    """Every environment variable name Settings reads (``MEMORY_`` + upper-cased field name)."""
    return {ENV_PREFIX + name.upper() for name in (*Settings.model_fields, *PENDING_SETTINGS)}


def unknown_env_names(names: set[str]) -> set[str]:
    """The ``MEMORY_*`` names among ``names`` that no setting reads."""
    return {n for n in names if n.startswith(ENV_PREFIX)} - settings_env_names() - NON_SETTINGS_ENV


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate_defaults(value: str) -> str:
    """Resolve compose's ``${VAR:-default}`` to its default (what a bare `docker compose up` uses)."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", value)


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build Settings exactly as a container with ``env`` would (no .env file, nothing else set)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def repo() -> Path:
    return REPO
