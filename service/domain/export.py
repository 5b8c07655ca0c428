"""A user's export: every record of theirs as JSON lines (see ``service.schemas.portability``).

Each page is read in its own short transaction, so a long export never holds the database; a
record written while it runs may or may not be in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from service.domain.clock import now
from service.domain.errors import NotFound
from service.schemas.portability import (
    DigestPart,
    DocumentLine,
    LineModel,
    MemoryLine,
    MessageLine,
    ProfileLine,
    SessionLine,
    UserLine,
    VersionLine,
)
from service.storage.ports import Database
from service.storage.records import DocumentQuery, Mark, SessionDigest, SessionRecord

PAGE = 500


def _line(model: LineModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _from(line: type[LineModel], record: object, **extra: Any) -> dict[str, Any]:
    """The export line of a storage record: the line's fields, read from the record's attributes."""
    fields = {f: getattr(record, f) for f in line.model_fields if f != "kind" and f not in extra}
    return _line(line(**fields, **extra))


def _digest(digest: SessionDigest | None) -> DigestPart | None:
    if digest is None:
        return None
    return DigestPart(
        summary=digest.summary,
        summary_tokens=digest.summary_tokens,
        summary_at=digest.summary_at,
        summarized_count=digest.summarized.count,
        condensed_count=digest.condensed.count,
        extracted_count=digest.extracted.count,
    )


class Exporter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def check(self, tenant_id: str, user_id: str) -> None:
        """404 before the stream starts (a stream cannot change its status once begun)."""
        async with self._db.transaction() as repos:
            if await repos.users.get(tenant_id, user_id) is None:
                raise NotFound(f"user {user_id!r} not found")

    async def lines(self, tenant_id: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
        yield _line(UserLine(id=user_id, exported_at=now()))
        async with self._db.transaction() as repos:
            profile = await repos.profiles.get(tenant_id, user_id)
            sessions = await repos.userdata.sessions(tenant_id, user_id)
        if profile is not None:
            yield _from(ProfileLine, profile)
        for session in sessions:
            async for line in self._session(session):
                yield line
        async for line in self._memories(tenant_id, user_id):
            yield line
        async for line in self._versions(tenant_id, user_id):
            yield line
        async for line in self._documents(tenant_id, user_id):
            yield line

    async def _session(self, session: SessionRecord) -> AsyncIterator[dict[str, Any]]:
        async with self._db.transaction() as repos:
            digest = await repos.digests.get(session.tenant_id, session.id)
        yield _from(SessionLine, session, digest=_digest(digest))
        mark: Mark | None = None
        while True:
            async with self._db.transaction() as repos:
                page = await repos.messages.after(session.tenant_id, session.id, mark, PAGE)
            for m in page:
                yield _from(MessageLine, m)
            if len(page) < PAGE:
                return
            mark = Mark(page[-1].created_at, page[-1].seq)

    async def _memories(self, tenant_id: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
        after: str | None = None
        while True:
            async with self._db.transaction() as repos:
                page = await repos.userdata.memories(tenant_id, user_id, after, PAGE)
            for m in page:
                yield _from(MemoryLine, m)
            if len(page) < PAGE:
                return
            after = page[-1].id

    async def _versions(self, tenant_id: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
        after: tuple[str, int] | None = None
        while True:
            async with self._db.transaction() as repos:
                page = await repos.userdata.versions(tenant_id, user_id, after, PAGE)
            for v in page:
                yield _from(VersionLine, v)
            if len(page) < PAGE:
                return
            after = (page[-1].memory_id, page[-1].version)

    async def _documents(self, tenant_id: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            async with self._db.transaction() as repos:
                page = await repos.documents.list(DocumentQuery(tenant_id, PAGE, user_id=user_id, cursor=cursor))
            for d in page.items:
                yield _from(DocumentLine, d)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
