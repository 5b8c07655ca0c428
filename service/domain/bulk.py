"""Bulk import of memories (``POST /v1/memories/import``): JSON lines in, thousands a transaction.

Each line is a memory as ``POST /v1/memories`` takes it, with an optional ``id`` and an optional
precomputed dense ``vector``. Lines are parsed as they stream in and applied in batches of
``BulkLimits.batch``, each in one transaction that stores the memories with their ``created``
versions (and, for summaries, their keyword-index terms) and queues a ``sync_memory`` job for
every memory that came without a vector. SQL is the record: only after the commit are the lines'
vectors written to the index, straight (the BM25 sparse vectors are computed here; no model runs);
when that write fails, the batch's memories are queued for the worker instead.

What the write path of ``POST /v1/memories`` does and an import does not: no duplicate or
near-duplicate check (every line is kept; ids make a re-run safe), and one profile refresh per user
per import rather than one per write (queued when the import ends, also when it stops at a bad
line; only a killed process leaves profiles to be refreshed by the users' next writes).

A line whose id is stored already is skipped. When it carries a vector and the stored memory (of
this tenant) still has the same content, that vector is written again: an import cut short between
a commit and its vector write (a killed process) is completed by running it again.

A bad line stops the import with a 422 naming it; the lines before it are kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from service.domain import records
from service.domain.clock import now
from service.domain.condense import index_terms
from service.domain.errors import InvalidInput, LimitExceeded
from service.domain.indexing import SYNC_MEMORY, Indexer
from service.domain.memories import CREATED, NewMemory, alive, build
from service.domain.profiles import REFRESH_PROFILE
from service.domain.restore import lines_of
from service.schemas.bulk import MemoryImportLine
from service.storage.ports import Database, Repos
from service.storage.records import MemoryRecord

log = logging.getLogger(__name__)

_LINE: TypeAdapter[MemoryImportLine] = TypeAdapter(MemoryImportLine)
_FIELDS = tuple(f.name for f in fields(NewMemory))


@dataclass(frozen=True, slots=True)
class BulkLimits:
    dimension: int  # the embedding model's
    max_content_chars: int
    batch: int = 2000  # memories a transaction, and a vector write


@dataclass(slots=True)
class BulkTally:
    imported: int = 0
    skipped: int = 0
    indexed: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    memory: MemoryRecord
    vector: list[float] | None


@dataclass(slots=True)
class _Run:
    tenant_id: str
    tally: BulkTally = field(default_factory=BulkTally)
    sessions: set[str] = field(default_factory=set)  # session ids found in the tenant
    users: set[str] = field(default_factory=set)  # users who got memories: their profiles are refreshed at the end


#: Vector lengths handed to the index as they are: the engines normalise cosine vectors when
#: they store them (Qdrant's documented behaviour; Edge's and qdrant-client's local mode too: a
#: contract test holds them to it), in f32, and skip it when the squared length is under f32's
#: epsilon (a length under 3.5e-4: measured on Edge). Outside this range the vector is
#: normalised here, in f64. An embedding of the model is of length 1 give or take its rounding.
_ENGINE_NORMALISES = (1e-2, 1e2)


def parse(raw: bytes, number: int, limits: BulkLimits) -> tuple[MemoryImportLine, list[float] | None]:
    """One line, validated like ``POST /v1/memories`` input plus its id and vector; the error
    names the line. The vector is one of the model's dimension, of finite numbers, not all zero,
    and comes back as a list the index normalises (or normalised here when that is unsafe).

    The usual line takes a quick path: parsed by pydantic's JSON parser (the one ``validate_json``
    uses, so numbers read the same), the fields but the vector validated as Python values, the
    vector checked by one ``math.hypot`` (it refuses what is not a number and measures the
    length). Validating the 384 numbers one by one in pydantic was half of a line's parse. Any
    line the quick path is not sure of goes the strict way, which gives the error or the line
    exactly as before."""
    try:
        data = from_json(raw)
    except ValueError:
        return _parse_strictly(raw, number, limits)
    if type(data) is not dict:
        return _parse_strictly(raw, number, limits)
    vector = data.pop("vector", None)
    try:
        line = _LINE.validate_python(data)
    except ValidationError:
        return _parse_strictly(raw, number, limits)
    if vector is None:
        _check_content(line, number, limits)
        return line, None
    if type(vector) is not list or len(vector) != limits.dimension:
        return _parse_strictly(raw, number, limits)
    if (b"true" in raw or b"false" in raw) and bool in set(map(type, vector)):
        return _parse_strictly(raw, number, limits)  # pydantic reads a boolean as 0.0 or 1.0; qdrant-client refuses one
    try:
        length = math.hypot(*vector)
    except (TypeError, OverflowError):  # a string, null, array or object among the numbers; an int too big
        return _parse_strictly(raw, number, limits)
    if not _ENGINE_NORMALISES[0] <= length <= _ENGINE_NORMALISES[1]:  # also NaN, infinite, zero
        return _parse_strictly(raw, number, limits)
    _check_content(line, number, limits)  # after the vector, as the strict way checks them
    return line, vector


def _parse_strictly(raw: bytes, number: int, limits: BulkLimits) -> tuple[MemoryImportLine, list[float] | None]:
    """The line validated by pydantic from the bytes, vector and all; its vector at unit length."""
    try:
        line = _LINE.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise InvalidInput(f"line {number}: {where}: {first['msg']}") from None
    _check_content(line, number, limits)
    if line.vector is None:
        return line, None
    if len(line.vector) != limits.dimension:
        raise InvalidInput(
            f"line {number}: vector has {len(line.vector)} numbers; the embedding model's dimension is {limits.dimension}"
        )
    length = math.hypot(*line.vector)
    if length == 0.0:
        raise InvalidInput(f"line {number}: vector is all zeros (it has no direction)")
    if not math.isfinite(length):
        raise InvalidInput(f"line {number}: vector is too long to normalise")
    return line, line.vector if abs(length - 1.0) < 1e-9 else [x / length for x in line.vector]


def _check_content(line: MemoryImportLine, number: int, limits: BulkLimits) -> None:
    if len(line.content) > limits.max_content_chars:
        raise LimitExceeded(
            f"line {number}: content has {len(line.content)} characters; the limit is {limits.max_content_chars}"
        )


@dataclass(frozen=True, slots=True)
class _Write:
    """A committed batch's vectors, still to be written: its new memories, and skipped ones
    stored with the same content (written again)."""

    fresh: list[_Line]
    again: list[tuple[MemoryRecord, list[float]]]


class _Stages:
    """Each batch's SQL transaction, then its vector write (which must follow the commit). The
    write runs while the next batch is parsed and stored, one write at a time and in batch order
    (parsing on while the transaction runs too measured slower: both want the one interpreter)."""

    def __init__(
        self, store: Callable[[list[_Line]], Awaitable[_Write]], write: Callable[[_Write], Coroutine[Any, Any, None]]
    ) -> None:
        self._store = store
        self._write = write
        self._writing: asyncio.Task[None] | None = None

    async def put(self, batch: list[_Line]) -> None:
        """Store the batch, and start its vector write once the previous one is done."""
        written = await self._store(batch)
        await self.drain()
        self._writing = asyncio.create_task(self._write(written))

    async def drain(self) -> None:
        """Wait for the vector write in flight."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing


class BulkImporter:
    def __init__(self, db: Database, indexer: Indexer, limits: BulkLimits, wake: Callable[[], None]) -> None:
        self._db = db
        self._indexer = indexer
        self._limits = limits
        self._wake = wake

    async def run(self, tenant_id: str, chunks: AsyncIterator[bytes]) -> BulkTally:
        """Import a stream of JSON lines into the tenant; the counts."""
        run = _Run(tenant_id)
        stages = _Stages(lambda lines: self._store(run, lines), lambda write: self._write_vectors(run, write))
        batch: list[_Line] = []
        try:
            async for number, raw in lines_of(chunks):
                try:
                    batch.append(self._line(run, number, *parse(raw, number, self._limits)))
                except (InvalidInput, LimitExceeded):
                    await stages.put(batch)  # the lines before the bad one stay
                    raise
                if len(batch) >= self._limits.batch:
                    await stages.put(batch)
                    batch = []
            await stages.put(batch)
        finally:
            try:
                await stages.drain()  # committed rows get their vectors (or jobs) whatever happened after
            finally:
                await self._refresh_profiles(run)
        return run.tally

    def _line(self, run: _Run, number: int, line: MemoryImportLine, vector: list[float] | None) -> _Line:
        """The line as the memory it stores (built as ``POST /v1/memories`` builds one)."""
        new = NewMemory(**{name: getattr(line, name) for name in _FIELDS})
        return _Line(number, build(run.tenant_id, new, now(), None if line.id is None else str(line.id)), vector)

    async def _store(self, run: _Run, batch: list[_Line]) -> _Write:
        """Store one batch in one transaction; the vectors it leaves to write. A line naming no
        session stops it there (the lines before it are stored, then the error is raised)."""
        if not batch:
            return _Write([], [])
        unique = list({line.memory.id: line for line in reversed(batch)}.values())[::-1]  # first of a repeated id
        async with self._db.transaction() as repos:
            kept, bad = await self._known_sessions(repos, run, unique)
            new_ids = set(await repos.userdata.restore_memories([line.memory for line in kept]))
            fresh = [line for line in kept if line.memory.id in new_ids]
            again = await self._still_stored(repos, run, [line for line in kept if line.memory.id not in new_ids])
            await self._record(repos, run, [line.memory for line in fresh])
            queued = [line.memory.id for line in fresh if line.vector is None]
            await repos.jobs.enqueue(run.tenant_id, SYNC_MEMORY, queued)
        taken = [line for line in batch if bad is None or line.number < bad.number]
        run.tally.imported += len(fresh)
        run.tally.skipped += len(taken) - len(fresh)
        run.tally.queued += len(queued)
        if queued:
            self._wake()
        write = _Write([line for line in fresh if line.vector is not None], again)
        if bad is not None:
            await self._write_vectors(run, write)
            raise InvalidInput(f"line {bad.number}: session_id: session {bad.memory.session_id!r} does not exist")
        return write

    async def _known_sessions(
        self, repos: Repos, run: _Run, lines: list[_Line]
    ) -> tuple[list[_Line], _Line | None]:
        """The lines before the first that names no session of the tenant, and that line."""
        for index, line in enumerate(lines):
            session_id = line.memory.session_id
            if session_id is None or session_id in run.sessions:
                continue
            if await repos.sessions.get(run.tenant_id, session_id) is None:
                return lines[:index], line
            run.sessions.add(session_id)
        return lines, None

    async def _still_stored(self, repos: Repos, run: _Run, skipped: list[_Line]) -> list[tuple[MemoryRecord, list[float]]]:
        """Skipped lines with a vector whose stored memory of this tenant still says the same."""
        wanted = {line.memory.id: line for line in skipped if line.vector is not None}
        if not wanted:
            return []
        at = now()
        stored = await repos.memories.get_many(run.tenant_id, list(wanted))
        return [
            (memory, wanted[memory.id].vector)  # type: ignore[misc]
            for memory in stored
            if memory.content == wanted[memory.id].memory.content and alive(memory, at)
        ]

    async def _record(self, repos: Repos, run: _Run, memories: list[MemoryRecord]) -> None:
        """What the normal write path keeps beside a new memory: its first version and, for a
        summary, its keyword terms (its user's profile is refreshed at the end of the run)."""
        if not memories:
            return
        await repos.versions.add(run.tenant_id, [records.version(m, CREATED, {}, m.created_at) for m in memories])
        for memory in memories:
            if memory.type == "summary":
                await repos.terms.add(run.tenant_id, memory.user_id, memory.id, index_terms(memory))
        run.users.update(m.user_id for m in memories)

    async def _write_vectors(self, run: _Run, write: _Write) -> None:
        """Write a committed batch's vectors; when that fails, queue its new memories for the worker."""
        memories = [line.memory for line in write.fresh] + [memory for memory, _ in write.again]
        if not memories:
            return
        vectors = [line.vector for line in write.fresh] + [vector for _, vector in write.again]
        try:
            await self._indexer.upsert(memories, dense=vectors)  # type: ignore[arg-type]
        except Exception:
            log.warning("bulk vector write failed; %d memories queued for the worker", len(write.fresh), exc_info=True)
            async with self._db.transaction() as repos:
                await repos.jobs.enqueue(run.tenant_id, SYNC_MEMORY, [line.memory.id for line in write.fresh])
            run.tally.queued += len(write.fresh)
            self._wake()
            return
        run.tally.indexed += len(memories)

    async def _refresh_profiles(self, run: _Run) -> None:
        """One profile refresh for each user who got memories (at the end: the worker's profile
        writes would wait on the import's transactions, and one refresh a user is enough)."""
        if run.users:
            users = sorted(run.users)
            run.users.clear()
            async with self._db.transaction() as repos:
                await repos.jobs.enqueue(run.tenant_id, REFRESH_PROFILE, users)
            self._wake()
