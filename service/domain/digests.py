"""The session digest: background work that keeps long conversations condensed.

Posting messages queues one ``digest_session`` job per batch (in the messages' transaction), so a
write never waits for a summarizer. The job runs three steps for the session, each resuming from
its own mark in the session's message order (``SessionDigest``):

1. the rolling summary folds in the messages that fell out of the buffer (``summaries``);
2. facts the extractor finds in new messages become semantic memories (``extraction``);
3. every ``condense_every`` messages become one summary memory (``condense``).

A step reads, computes without a transaction (a summarizer may be an LLM), then saves its result
only if the mark it started from is still the stored one: two workers on one session never
apply the same messages twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from service.digest.model import Turn
from service.domain.errors import NotFound
from service.storage.ports import Database, Repos
from service.storage.records import Mark, MessageRecord, Progress, SessionDigest, SessionRecord

log = logging.getLogger(__name__)

#: The outbox job kind: bring a session's digest up to date.
DIGEST_SESSION = "digest_session"


def turn(message: MessageRecord) -> Turn:
    return Turn(id=message.id, role=message.role, speaker=message.name or message.role, content=message.content, at=message.created_at)


def mark(message: MessageRecord) -> Mark:
    return Mark(message.created_at, message.seq)


def advanced(progress: Progress, taken: Sequence[MessageRecord]) -> Progress:
    """The progress after ``taken`` (oldest first) have been taken in."""
    if not taken:
        return progress
    return Progress(count=progress.count + len(taken), until=mark(taken[-1]))


def empty_digest(session: SessionRecord) -> SessionDigest:
    return SessionDigest(tenant_id=session.tenant_id, session_id=session.id)


async def queue_digest(repos: Repos, session: SessionRecord, messages: Sequence[MessageRecord]) -> None:
    """The ``StoredHook`` for messages: one digest job for the batch, in its own transaction."""
    if messages:
        await repos.jobs.enqueue(session.tenant_id, DIGEST_SESSION, [session.id], coalesce=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session and its digest as one step found them."""

    session: SessionRecord
    digest: SessionDigest


async def read_snapshot(repos: Repos, tenant_id: str, session_id: str) -> Snapshot:
    session = await repos.sessions.get(tenant_id, session_id)
    if session is None:
        raise NotFound(f"session {session_id!r} not found")
    return Snapshot(session, await read_digest(repos, session))


async def read_digest(repos: Repos, session: SessionRecord) -> SessionDigest:
    """The stored digest of a session, or its empty one before anything was digested."""
    return await repos.digests.get(session.tenant_id, session.id) or empty_digest(session)


async def snapshot(db: Database, tenant_id: str, session_id: str) -> Snapshot:
    async with db.transaction() as repos:
        return await read_snapshot(repos, tenant_id, session_id)


async def still_current(repos: Repos, seen: SessionDigest, step: str) -> SessionDigest | None:
    """The stored digest when ``step`` has not moved since ``seen`` was read, else None."""
    stored = await repos.digests.get(seen.tenant_id, seen.session_id)
    if stored is None:
        return seen if getattr(seen, step) == Progress() else None
    return stored if getattr(stored, step) == getattr(seen, step) else None


class DigestStep(Protocol):
    async def __call__(self, tenant_id: str, session_id: str) -> object: ...


class SessionDigester:
    """The ``digest_session`` job handler: runs each step for each session named."""

    def __init__(self, steps: Sequence[DigestStep]) -> None:
        self._steps = tuple(steps)

    async def run(self, tenant_id: str, session_ids: Sequence[str]) -> None:
        for session_id in dict.fromkeys(session_ids):
            try:
                for step in self._steps:
                    await step(tenant_id, session_id)
            except NotFound:
                log.info("digest skipped: the session is gone", extra={"session_id": session_id})
