"""How SQL values are written: JSON columns through orjson (with the standard encoder behind it),
UTC datetimes on SQLite as the text SQLAlchemy's DATETIME wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import DATETIME

from service.storage.sql.database import _json_dumps, _json_loads
from service.storage.sql.types import UtcDateTime


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, "x", None, True], "c": {"d": "é"}},
        ["Ines", "bees"],
        {},
        {"n": 2**64},  # beyond orjson's integers: the standard encoder writes it
        {"s": "\ud800"},  # a lone surrogate, which orjson refuses
        {1: "int key", None: "null key"},
    ],
)
def test_json_round_trips_as_the_standard_encoder_wrote_it(value: object) -> None:
    assert _json_loads(_json_dumps(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(2023, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 30, tzinfo=timezone(timedelta(hours=-8))),
    ],
)
def test_sqlite_datetimes_are_stored_as_before(value: datetime) -> None:
    dialect = sqlite.dialect()
    before = DATETIME().bind_processor(dialect)(value.astimezone(UTC).replace(tzinfo=None))  # type: ignore[misc]
    process = UtcDateTime().bind_processor(dialect)
    assert process(value) == before
    assert process(None) is None
    with pytest.raises(ValueError, match="naive"):
        process(value.replace(tzinfo=None))
