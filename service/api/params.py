"""Query and path parameters shared by the listings: ids, cursors and a time window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query
from fastapi.exceptions import RequestValidationError

from service.schemas.validators import ID_PATTERN, UtcDatetime, check_window

SessionId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The session's id.")]
MemoryId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description="The memory's id.")]

Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The next_cursor of the previous page of this same listing (it is bound to it).",
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="Items per page (capped at MEMORY_MAX_PAGE_SIZE, default 200).")]


@dataclass(frozen=True, slots=True)
class Window:
    after: datetime | None
    before: datetime | None


def time_window(
    after: Annotated[UtcDatetime | None, Query(description="Only at or after this time (ISO-8601).")] = None,
    before: Annotated[UtcDatetime | None, Query(description="Only before this time (ISO-8601).")] = None,
) -> Window:
    """``after`` and ``before`` in UTC; ``after`` later than ``before`` is a 422."""
    try:
        check_window(after, before)
    except ValueError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "after"), "msg": str(exc), "input": after.isoformat() if after else None}]
        ) from None
    return Window(after, before)


TimeWindow = Annotated[Window, Depends(time_window)]
