"""Messages: the durable episodic record in SQL, mirrored into the session's short-term buffer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import uuid4

from service.domain.clock import as_utc, now
from service.domain.errors import InvalidInput, LimitExceeded, NotFound, checked_cursor
from service.domain.sessions import buffer_key, drop_buffer
from service.storage.ports import Database, MessageBuffer, Repos, TokenCounter
from service.storage.records import BufferedMessage, MessageQuery, MessageRecord, Page, SessionRecord

log = logging.getLogger(__name__)

ROLES = ("user", "assistant", "system", "tool")


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: str
    content: str
    name: str | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch_items: int
    max_content_chars: int
    buffer_max_messages: int
    buffer_ttl_seconds: int
    buffer_max_tokens: int = 0  # 0: capped by messages only


@dataclass(frozen=True, slots=True)
class BufferView:
    session_id: str
    messages: list[BufferedMessage]
    total_tokens: int
    cap: int
    ttl_seconds: int
    rebuilt: bool


class StoredHook(Protocol):
    """Work done in the same transaction as new messages (e.g. queueing them for recall indexing)."""

    async def __call__(self, repos: Repos, session: SessionRecord, messages: Sequence[MessageRecord]) -> None: ...


def _buffered(message: MessageRecord) -> BufferedMessage:
    return BufferedMessage(
        id=message.id,
        seq=message.seq,
        role=message.role,
        content=message.content,
        name=message.name,
        created_at=message.created_at,
        token_count=message.token_count,
    )


def fit_budget(messages: Sequence[BufferedMessage], max_tokens: int | None) -> list[BufferedMessage]:
    """The newest messages whose token counts add up to at most ``max_tokens``, oldest first."""
    if max_tokens is None:
        return list(messages)
    kept: list[BufferedMessage] = []
    used = 0
    for message in reversed(messages):
        if used + message.token_count > max_tokens:
            break
        used += message.token_count
        kept.append(message)
    kept.reverse()
    return kept


class MessageService:
    def __init__(
        self,
        db: Database,
        buffer: MessageBuffer,
        tokens: TokenCounter,
        limits: Limits,
        on_stored: Sequence[StoredHook] = (),
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._buffer = buffer
        self._tokens = tokens
        self._limits = limits
        self._on_stored = tuple(on_stored)
        self._on_committed = on_committed

    def _check(self, batch: Sequence[NewMessage]) -> None:
        if not batch:
            raise InvalidInput("messages must hold at least one message")
        if len(batch) > self._limits.max_batch_items:
            raise LimitExceeded(
                f"a batch holds at most {self._limits.max_batch_items} messages; got {len(batch)}"
            )
        for index, message in enumerate(batch):
            if message.role not in ROLES:
                raise InvalidInput(f"messages[{index}].role must be one of {', '.join(ROLES)}")
            if len(message.content) > self._limits.max_content_chars:
                raise LimitExceeded(
                    f"messages[{index}].content has {len(message.content)} characters; "
                    f"the limit is {self._limits.max_content_chars}"
                )

    def _records(self, tenant_id: str, session_id: str, batch: Sequence[NewMessage]) -> list[MessageRecord]:
        at = now()
        return [
            MessageRecord(
                tenant_id=tenant_id,
                session_id=session_id,
                id=str(uuid4()),
                seq=0,
                role=m.role,
                content=m.content,
                name=m.name,
                metadata=m.metadata or {},
                created_at=as_utc(m.created_at) if m.created_at else at,
                token_count=self._tokens.count(m.content),
            )
            for m in batch
        ]

    async def add(self, tenant_id: str, session_id: str, batch: Sequence[NewMessage]) -> list[MessageRecord]:
        """Store a batch durably, then mirror it into the buffer (a failed mirror only drops the cache)."""
        self._check(batch)
        records = self._records(tenant_id, session_id, batch)
        async with self._db.transaction() as repos:
            session = await repos.sessions.get(tenant_id, session_id)
            if session is None:
                raise NotFound(f"session {session_id!r} not found")
            stored = await repos.messages.insert_many(records)
            for hook in self._on_stored:
                await hook(repos, session, stored)
        self._on_committed()
        await self._mirror(buffer_key(tenant_id, session_id), stored)
        return stored

    async def _in_order(self, key: str, stored: Sequence[MessageRecord]) -> bool:
        """Whether the batch can go at the end of the buffer without breaking time order."""
        times = [m.created_at for m in stored]
        if times != sorted(times):
            return False
        newest = await self._buffer.recent(key, 1)
        return not newest or newest[-1].created_at <= times[0]

    async def _mirror(self, key: str, stored: Sequence[MessageRecord]) -> None:
        try:
            in_order = await self._in_order(key, stored)
            if in_order:
                await self._buffer.append(key, [_buffered(m) for m in stored])
        except Exception:  # noqa: BLE001 - the SQL write is acknowledged; the buffer is only a cache
            log.warning("buffer update failed; dropping the cached buffer", exc_info=True)
            in_order = False
        if not in_order:
            # Client-supplied times sort before buffered messages, or the update failed: the next
            # read rebuilds the buffer from SQL.
            await drop_buffer(self._buffer, key)

    async def history(self, query: MessageQuery) -> Page[MessageRecord]:
        with checked_cursor():
            async with self._db.transaction() as repos:
                if await repos.sessions.get(query.tenant_id, query.session_id) is None:
                    raise NotFound(f"session {query.session_id!r} not found")
                return await repos.messages.list(query)

    async def buffer(
        self, tenant_id: str, session_id: str, last_n: int | None, max_tokens: int | None
    ) -> BufferView:
        """The recent messages from the buffer, rebuilt from SQL when the buffer is missing."""
        cap = self._limits.buffer_max_messages
        if last_n is not None and last_n > cap:
            raise LimitExceeded(f"last_n is {last_n}; this buffer keeps at most {cap} messages")
        limit = last_n or cap
        key = buffer_key(tenant_id, session_id)
        cached = await self._cached(key, limit)
        rebuilt = cached is None
        if cached is None:
            cached = await self._rebuild(tenant_id, session_id, key, limit)
        messages = fit_budget(cached, self._token_cap(max_tokens))
        return BufferView(
            session_id=session_id,
            messages=messages,
            total_tokens=sum(m.token_count for m in messages),
            cap=cap,
            ttl_seconds=self._limits.buffer_ttl_seconds,
            rebuilt=rebuilt,
        )

    def _token_cap(self, asked: int | None) -> int | None:
        """The smaller of the caller's budget and the buffer's own token cap (when set)."""
        caps = [c for c in (asked, self._limits.buffer_max_tokens or None) if c is not None]
        return min(caps) if caps else None

    async def _cached(self, key: str, limit: int) -> list[BufferedMessage] | None:
        try:
            return await self._buffer.recent(key, limit)
        except Exception:  # noqa: BLE001 - a buffer outage degrades to reading SQL
            log.warning("buffer read failed; serving from SQL", exc_info=True)
            return None

    async def _rebuild(self, tenant_id: str, session_id: str, key: str, limit: int) -> list[BufferedMessage]:
        try:
            token: str | None = await self._buffer.begin_fill(key)
        except Exception:  # noqa: BLE001
            token = None
        async with self._db.transaction() as repos:
            if await repos.sessions.get(tenant_id, session_id) is None:
                raise NotFound(f"session {session_id!r} not found")
            recent = await repos.messages.recent(tenant_id, session_id, self._limits.buffer_max_messages)
        snapshot = [_buffered(m) for m in recent]
        if token is not None:
            try:
                await self._buffer.install(key, token, snapshot)
            except Exception:  # noqa: BLE001 - serving from SQL is correct, only slower
                log.warning("buffer could not be filled from SQL", exc_info=True)
        return snapshot[-limit:]
