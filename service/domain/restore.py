"""Restoring a user from an export stream: idempotent (records already there are skipped, ids
are kept) and re-indexed through the outbox.

Lines are applied in batches of ``BATCH`` in their own transactions, as they arrive, so a large
import never sits in memory. A bad line stops the import there with a 422 naming the line; the
lines before it are kept, and importing the whole stream again is safe.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from service.domain.clock import now as clock_now
from service.domain.condense import index_terms
from service.domain.documents import NewDocument
from service.domain.errors import InvalidInput
from service.domain.indexing import SYNC_MEMORY
from service.domain.records import content_hash
from service.domain.sessions import buffer_key, drop_buffer
from service.schemas.portability import (
    DigestPart,
    DocumentLine,
    Line,
    MemoryLine,
    MessageLine,
    ProfileLine,
    SessionLine,
    VersionLine,
)
from service.storage.ports import Database, MessageBuffer, Repos
from service.storage.records import (
    Mark,
    MemoryRecord,
    MemoryVersion,
    MessageRecord,
    ProfileRecord,
    Progress,
    SessionDigest,
    SessionRecord,
)

BATCH = 500
_LINE: TypeAdapter[Line] = TypeAdapter(Line)


class DocumentRestorer(Protocol):
    async def restore(self, tenant_id: str, new: NewDocument) -> bool:
        """Keep the document (chunked and queued for indexing) unless its id is there; True if new."""
        ...


def restored_document(user_id: str, line: DocumentLine) -> NewDocument:
    """An exported document of ``user_id`` as it is written back (same id, sizes and times)."""
    return NewDocument(
        id=line.id,
        title=line.title,
        content=line.content,
        user_id=user_id,
        metadata=line.metadata,
        chunk_tokens=line.chunk_tokens,
        overlap_tokens=line.overlap_tokens,
        created_at=line.created_at,
        updated_at=line.updated_at,
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_line(raw: bytes, number: int) -> Line:
    """One line of the stream, validated like API input; ``InvalidInput`` naming the line."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        return _LINE.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise InvalidInput(f"line {number}: {where}: {first['msg']}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"line {number}: not a JSON object ({exc.__class__.__name__})") from None


async def lines_of(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """The non-blank lines of a byte stream, numbered from 1."""
    pending = b""
    number = 0
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            number += 1
            if raw.strip():
                yield number, raw
    if pending.strip():
        yield number + 1, pending


@dataclass(slots=True)
class Tally:
    imported: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, new: int, seen: int) -> None:
        self.imported[kind] += new
        self.skipped[kind] += seen - new


@dataclass(slots=True)
class _Run:
    tenant_id: str
    user_id: str
    tally: Tally = field(default_factory=Tally)
    sessions: set[str] = field(default_factory=set)  # the user's sessions, checked or restored
    digests: dict[str, DigestPart] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # sessions that got messages


class Importer:
    def __init__(
        self,
        db: Database,
        buffer: MessageBuffer,
        documents: DocumentRestorer,
        wake: Callable[[], None],
    ) -> None:
        self._db = db
        self._buffer = buffer
        self._documents = documents
        self._wake = wake

    async def restore(self, tenant_id: str, user_id: str, chunks: AsyncIterator[bytes]) -> Tally:
        run = _Run(tenant_id, user_id)
        batch: list[tuple[int, Line]] = []
        async for number, raw in lines_of(chunks):
            batch.append((number, parse_line(raw, number)))
            if len(batch) >= BATCH:
                await self._apply(run, batch)
                batch = []
        await self._apply(run, batch)
        await self._finish(run)
        return run.tally

    async def _apply(self, run: _Run, batch: Sequence[tuple[int, Line]]) -> None:
        if not batch:
            return
        documents: list[DocumentLine] = []
        async with self._db.transaction() as repos:
            for kind in ("profile", "session", "message", "memory", "memory_version"):
                group = [(n, line) for n, line in batch if line.kind == kind]
                if group:
                    await _APPLY[kind](repos, run, group)
            documents = [line for _, line in batch if isinstance(line, DocumentLine)]
        run.tally.skipped["user"] += sum(1 for _, line in batch if line.kind == "user")
        for document in documents:
            new = await self._documents.restore(run.tenant_id, restored_document(run.user_id, document))
            run.tally.add("document", int(new), 1)
        self._wake()

    async def _finish(self, run: _Run) -> None:
        """Digests of restored sessions (all their messages taken in), and no stale buffers."""
        async with self._db.transaction() as repos:
            for session_id, part in run.digests.items():
                if await repos.digests.get(run.tenant_id, session_id) is None:
                    await repos.digests.save(await _digest(repos, run.tenant_id, session_id, part))
        for session_id in run.touched:
            await drop_buffer(self._buffer, buffer_key(run.tenant_id, session_id))


async def _digest(repos: Repos, tenant_id: str, session_id: str, part: DigestPart) -> SessionDigest:
    last = await repos.messages.recent(tenant_id, session_id, 1)
    until = Mark(last[-1].created_at, last[-1].seq) if last else None
    return SessionDigest(
        tenant_id=tenant_id,
        session_id=session_id,
        summary=part.summary,
        summary_tokens=part.summary_tokens,
        summary_at=part.summary_at,
        summarized=Progress(part.summarized_count, until),
        condensed=Progress(part.condensed_count, until),
        extracted=Progress(part.extracted_count, until),
        updated_at=clock_now(),
    )


async def _profiles(repos: Repos, run: _Run, group: Sequence[tuple[int, Line]]) -> None:
    for _, line in group:
        assert isinstance(line, ProfileLine)
        new = await repos.profiles.get(run.tenant_id, run.user_id) is None
        if new:
            await repos.profiles.save(
                ProfileRecord(run.tenant_id, run.user_id, line.fields, [], [], line.created_at, line.updated_at)
            )
        run.tally.add("profile", int(new), 1)


async def _sessions(repos: Repos, run: _Run, group: Sequence[tuple[int, Line]]) -> None:
    records = []
    for _, line in group:
        assert isinstance(line, SessionLine)
        records.append(
            SessionRecord(run.tenant_id, line.id, run.user_id, line.agent_id, line.metadata, line.created_at, line.updated_at)
        )
        if line.digest is not None:
            run.digests[line.id] = line.digest
    new = await repos.userdata.restore_sessions(records)
    run.tally.add("session", new, len(records))
    for number, line in group:
        await _own_session(repos, run, line.id, number)  # type: ignore[union-attr]


async def _own_session(repos: Repos, run: _Run, session_id: str, number: int) -> None:
    """The session exists and is this user's (an id another user has cannot take their records)."""
    if session_id in run.sessions:
        return
    found = await repos.sessions.get(run.tenant_id, session_id)
    if found is None:
        raise InvalidInput(f"line {number}: session {session_id!r} is neither in the stream before it nor stored")
    if found.user_id != run.user_id:
        raise InvalidInput(f"line {number}: session {session_id!r} belongs to another user")
    run.sessions.add(session_id)


async def _messages(repos: Repos, run: _Run, group: Sequence[tuple[int, Line]]) -> None:
    records = []
    for number, line in group:
        assert isinstance(line, MessageLine)
        await _own_session(repos, run, line.session_id, number)
        records.append(
            MessageRecord(
                run.tenant_id, line.session_id, line.id, 0, line.role, line.content, line.name,
                line.metadata, line.created_at, line.token_count,
            )
        )
        run.touched.add(line.session_id)
    run.tally.add("message", await repos.userdata.restore_messages(records), len(records))


async def _memories(repos: Repos, run: _Run, group: Sequence[tuple[int, Line]]) -> None:
    records = []
    for _, line in group:
        assert isinstance(line, MemoryLine)
        fields = line.model_dump(exclude={"kind"})
        records.append(
            MemoryRecord(tenant_id=run.tenant_id, user_id=run.user_id, content_hash=content_hash(line.content), **fields)
        )
    new_ids = await repos.userdata.restore_memories(records)
    if new_ids:
        await repos.jobs.enqueue(run.tenant_id, SYNC_MEMORY, new_ids)
        for memory in (r for r in records if r.id in set(new_ids) and r.type == "summary"):
            await repos.terms.add(run.tenant_id, run.user_id, memory.id, index_terms(memory))
    run.tally.add("memory", len(new_ids), len(records))


async def _versions(repos: Repos, run: _Run, group: Sequence[tuple[int, Line]]) -> None:
    versions = []
    for _, line in group:
        assert isinstance(line, VersionLine)
        versions.append(MemoryVersion(line.memory_id, line.version, line.op, line.changes, line.snapshot, line.at))
    run.tally.add("memory_version", await repos.userdata.restore_versions(run.tenant_id, run.user_id, versions), len(versions))


_APPLY = {
    "profile": _profiles,
    "session": _sessions,
    "message": _messages,
    "memory": _memories,
    "memory_version": _versions,
}
