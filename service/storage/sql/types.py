"""Column types that behave the same on Postgres and SQLite (the one dialect-aware module)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: JSON documents: JSONB on Postgres, JSON text on SQLite.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")

#: An auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY).
BigSerial = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else in_utc(value)

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, an aware datetime straight to the stored text in one call (the conversion
        here and then the format of SQLAlchemy's DATETIME were a fifth of a bulk import's SQL time)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, the stored text straight to an aware datetime in one call (the parse of
        SQLAlchemy's DateTime and then ``replace`` cost half of reading a memory row)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_utc


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite's naive UTC text, the format of SQLAlchemy's DATETIME
    (``2023-05-08 13:56:00.000000``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]  # less the "+00:00"


def _sqlite_utc(value: str | None) -> datetime | None:
    """SQLite's naive UTC text (``2023-05-08 13:56:00.000000``) as an aware UTC datetime."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text that names its own offset
        return in_utc(datetime.fromisoformat(value))


def in_utc(value: datetime) -> datetime:
    """A stored datetime as aware UTC: a naive one is UTC already (SQLite keeps no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
