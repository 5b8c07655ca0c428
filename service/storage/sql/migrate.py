"""Run the Alembic migrations in ``migrations/`` against a database URL."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    """The migration tree: next to the package in a checkout, else ``$MEMORY_MIGRATIONS_DIR`` or ./migrations."""
    beside_package = Path(__file__).resolve().parents[3] / "migrations"
    if (beside_package / "env.py").exists():
        return beside_package
    return Path(os.environ.get("MEMORY_MIGRATIONS_DIR", "migrations")).resolve()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", migrations_dir().as_posix())
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking: call from a thread (or before the event loop starts)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
