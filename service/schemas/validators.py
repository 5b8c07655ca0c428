"""Shared input validators: finite numbers, storable strings, bounded JSON, sane dates.

Each check raises ``ValueError`` with a message that names the limit but never echoes the
value (the value may be what cannot be rendered). Pydantic turns these into 422 problems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

#: Nesting of metadata objects and arrays (the top-level object is depth 1).
METADATA_MAX_DEPTH = 5
#: Keys in any one metadata object.
METADATA_MAX_KEYS = 64
#: Characters in a metadata key.
METADATA_KEY_MAX_CHARS = 128
#: Integers must fit a signed 64-bit integer (what the SQL and vector engines store).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Ids: short, printable, URL-safe.
ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"
#: Dates must stay one day inside the calendar, so time-zone arithmetic never overflows.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def storable(value: str) -> str:
    """A string every backend can store: valid UTF-8 (no lone surrogate) and no NUL character."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogate such as \\ud800)") from None
    return value


def _at(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}" if where else problem)


def _check_json(value: Any, depth: int, where: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _at(where, "integers must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _at(where, "numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, str):
        try:
            storable(value)
        except ValueError as exc:
            raise _at(where, str(exc)) from None
    elif isinstance(value, dict | list):
        if depth > METADATA_MAX_DEPTH:
            raise _at(where, f"nesting deeper than {METADATA_MAX_DEPTH} levels")
        if isinstance(value, dict):
            _check_keys(value, where)
            items = value.items()
        else:
            items = ((str(i), v) for i, v in enumerate(value))
        for key, item in items:
            _check_json(item, depth + 1, f"{where}.{key}" if where else key)
    else:
        raise _at(where, "not a JSON value")


def _check_keys(value: dict[Any, Any], where: str) -> None:
    if len(value) > METADATA_MAX_KEYS:
        raise _at(where, f"at most {METADATA_MAX_KEYS} keys per object")
    for key in value:
        if not isinstance(key, str) or len(key) > METADATA_KEY_MAX_CHARS:
            raise _at(where, f"keys are strings of at most {METADATA_KEY_MAX_CHARS} characters")
        try:
            storable(key)
        except ValueError as exc:
            raise _at(where, f"a key {exc}") from None


def bounded_json(value: Any) -> Any:
    """Free-form JSON (a metadata object, tool arguments) that every backend can store and index."""
    _check_json(value, 1, "")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def iso_datetime(value: Any) -> Any:
    """Dates come as ISO-8601 strings; a bare number would be read as a Unix timestamp."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO-8601 date-time string, e.g. 2024-05-01T12:00:00Z")
    return value


def within_calendar(value: datetime) -> datetime:
    """The time in UTC (naive is taken as UTC), refusing times that overflow on conversion."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range once converted to UTC") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("is outside the supported range (0001-01-02 to 9999-12-30 UTC)")
    return utc


def one_shape(shapes: Mapping[str, Any], choose: Callable[[Any], str | None], expected: str) -> WrapValidator:
    """Validates a union against the one member that ``choose`` names from the input's shape.

    A plain union tries every member, so one bad field answers an error per member, at locations
    named after pydantic's internals. Chosen by shape, the input gets its own member's errors only,
    at paths into the input; ``choose`` returning None answers ``expected`` ("Input should be ...").
    """
    adapters: dict[str, TypeAdapter[Any]] = {}

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, BaseModel):
            return handler(value)
        name = choose(value)
        if name is None:
            raise PydanticCustomError("shape_invalid", "Input should be {expected}", {"expected": expected})
        if name not in adapters:
            adapters[name] = TypeAdapter(shapes[name])
        return adapters[name].validate_python(value)

    return WrapValidator(validate)


SafeStr = Annotated[str, AfterValidator(storable)]

#: The id of a stored record (a memory's UUID, say).
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]

#: Free-form metadata in a request: bounded depth and keys, finite numbers, storable strings.
MetadataIn = Annotated[
    dict[str, Any],
    Field(
        max_length=METADATA_MAX_KEYS,
        description=(
            f"Free-form JSON object kept with the record: at most {METADATA_MAX_KEYS} keys per object, "
            f"keys of at most {METADATA_KEY_MAX_CHARS} characters, {METADATA_MAX_DEPTH} levels deep, finite numbers, "
            "64-bit integers, strings without NUL or lone surrogates."
        ),
    ),
    AfterValidator(bounded_json),
]

#: A point in time, as an ISO-8601 string; stored in UTC.
UtcDatetime = Annotated[datetime, BeforeValidator(iso_datetime), AfterValidator(within_calendar)]

#: A non-blank text (at least one character that is not white space).
NonBlank = Annotated[str, StringConstraints(min_length=1, pattern=r"\S"), AfterValidator(storable)]


def in_future(value: datetime | None) -> datetime | None:
    """An expiry must lie ahead: a memory stored already expired would be lost at once."""
    if value is not None and value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


def check_window(after: datetime | None, before: datetime | None) -> None:
    if after is not None and before is not None and after > before:
        raise ValueError("after must not be later than before")


#: An http(s) URL; other schemes (javascript:, data:, file:) are refused.
HttpUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"),
    AfterValidator(storable),
]

#: A metadata key usable in a filter: letters, digits, '_' and '-' (no dots, spaces or quotes).
FILTER_KEY_PATTERN = r"^[A-Za-z0-9_-]+$"
FilterKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=FILTER_KEY_PATTERN)]
FilterInt = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
FilterFloat = Annotated[float, Field(allow_inf_nan=False)]
FilterStr = Annotated[str, StringConstraints(max_length=256), AfterValidator(storable)]


def _filter_value_type(value: Any) -> str | None:
    if isinstance(value, bool):  # before int: True is an int too
        return "bool"
    for name, kind in (("int", int), ("float", float), ("str", str)):
        if isinstance(value, kind):
            return name
    return None


#: A filter value: a string, a 64-bit integer, a finite number or a boolean.
FilterValue = Annotated[
    bool | FilterInt | FilterFloat | FilterStr,
    one_shape(
        {"bool": bool, "int": FilterInt, "float": FilterFloat, "str": FilterStr},
        _filter_value_type,
        "a string, a number or a boolean",
    ),
    BeforeValidator(bounded_json),
]

#: Equality filters on top-level metadata keys.
MetadataFilter = Annotated[
    dict[FilterKey, FilterValue],
    Field(
        max_length=32,
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": FILTER_KEY_PATTERN},
            "additionalProperties": False,
        },
    ),
]


def record_json(value: Any) -> Any:
    """A stored record's JSON (a version's snapshot or changes): metadata nested two levels deeper."""
    _check_json(value, -1, "")
    return value
