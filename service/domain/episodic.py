"""Every stored message also becomes an episodic memory of the session's user, so conversations
are searchable with no extraction step."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.domain import records
from service.domain.clock import now
from service.domain.memories import record_created
from service.embedding.text import keywords
from service.storage.ports import Repos
from service.storage.records import MemoryRecord, MessageRecord, SessionRecord

#: How much a message weighs by default next to explicit memories (0.5).
MESSAGE_IMPORTANCE = 0.3


def episode(session: SessionRecord, message: MessageRecord, position: int, at: datetime) -> MemoryRecord:
    return MemoryRecord(
        tenant_id=message.tenant_id,
        id=message.id,
        user_id=session.user_id,
        session_id=session.id,
        agent_id=session.agent_id,
        type="episodic",
        content=message.content,
        modality="text",
        media_url=None,
        importance=MESSAGE_IMPORTANCE,
        topic=None,
        keywords=keywords(message.content),
        metadata=dict(message.metadata),
        speaker=message.name or message.role,
        event_time=message.created_at,
        created_at=at,
        updated_at=at,
        expires_at=None,
        source_ids=[message.id],
        position=position,
        version=1,
        content_hash=records.content_hash(message.content),
    )


async def record_episodes(repos: Repos, session: SessionRecord, messages: Sequence[MessageRecord]) -> None:
    """The ``StoredHook`` for messages: runs in the messages' own transaction."""
    at = now()
    last = await repos.episodes.last_position(session.tenant_id, session.id)
    start = 0 if last is None else last + 1
    turns = [m for m in messages if m.content.strip()]
    await record_created(repos, [episode(session, m, start + i, at) for i, m in enumerate(turns)])
