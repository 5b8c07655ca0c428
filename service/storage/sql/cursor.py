"""Opaque keyset-pagination cursors: the sort key of the last row, base64url-encoded JSON.

A cursor is bound to the listing it came from (``listing`` names it: the kind of record and
what scopes it, such as the tenant, the session and the order); a cursor of one listing used on
another is refused rather than read as a position there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Any

from service.storage.errors import InvalidCursor


def _tag(listing: str) -> str:
    return hashlib.blake2s(listing.encode("utf-8", "backslashreplace"), digest_size=8).hexdigest()


def encode(listing: str, created_at: datetime, tiebreak: str | int) -> str:
    raw = json.dumps([_tag(listing), created_at.isoformat(), tiebreak], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(listing: str, token: str, tiebreak_type: type[str] | type[int] = str) -> tuple[datetime, Any]:
    """The (created_at, tiebreak) of a cursor made by ``encode`` for the same ``listing``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tag, created_at, tiebreak = json.loads(raw)
        when = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if tag != _tag(listing):
        raise InvalidCursor("cursor belongs to another listing (another session, order or kind of record)")
    if when.tzinfo is None or isinstance(tiebreak, bool) or not isinstance(tiebreak, tiebreak_type):
        raise InvalidCursor("cursor is not valid")
    if isinstance(tiebreak, int) and not 0 <= tiebreak < 2**63:
        raise InvalidCursor("cursor is not valid")
    return when, tiebreak
