"""Users: whoever has a session, memory, document or profile in the tenant, with their counts."""

from __future__ import annotations

import base64
import binascii
import json

from service.domain.clock import now
from service.domain.errors import InvalidInput, NotFound
from service.storage.ports import Database
from service.storage.records import Page, UserSummary

_LISTING = "users"


def encode_cursor(user_id: str) -> str:
    raw = json.dumps([_LISTING, user_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The user id a cursor of this listing resumes after."""
    try:
        tag, user_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("cursor is not valid") from None
    if tag != _LISTING or not isinstance(user_id, str):
        raise InvalidInput("cursor belongs to another listing")
    return user_id


class UserService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, user_id: str) -> UserSummary:
        async with self._db.transaction() as repos:
            found = await repos.users.get(tenant_id, user_id, alive_at=now())
        if found is None:
            raise NotFound(f"user {user_id!r} not found")
        return found

    async def list(self, tenant_id: str, cursor: str | None, limit: int) -> Page[UserSummary]:
        """Users in id order."""
        after = decode_cursor(cursor) if cursor else None
        async with self._db.transaction() as repos:
            found = await repos.users.list(tenant_id, after, limit + 1, alive_at=now())
        items = found[:limit]
        return Page(items, encode_cursor(items[-1].id) if len(found) > limit else None)
