"""Opaque keyset-pagination cursors: the sort key of the last row, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from service.storage.errors import InvalidCursor


def encode(kind: str, created_at: datetime, tiebreak: str | int) -> str:
    raw = json.dumps([kind, created_at.isoformat(), tiebreak], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(kind: str, token: str) -> tuple[datetime, Any]:
    """The (created_at, tiebreak) of a cursor made by ``encode`` for the same listing ``kind``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_kind, created_at, tiebreak = json.loads(raw)
        when = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if got_kind != kind or when.tzinfo is None or not isinstance(tiebreak, str | int):
        raise InvalidCursor("cursor does not belong to this listing")
    return when, tiebreak
