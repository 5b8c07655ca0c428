"""The rolling summary: working memory that never overflows.

The buffer keeps a session's newest messages (``buffer_max_messages``, and ``buffer_max_tokens``
when set). Messages that fall out of it are folded into the session's rolling summary by the
digest job, so the summary plus the buffer always cover the whole conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from service.digest.model import Summarizer
from service.domain.clock import now
from service.domain.digests import advanced, snapshot, still_current, turn
from service.observability.metrics import Metrics
from service.storage.ports import Database, TokenCounter
from service.storage.records import Mark, MessageRecord, SessionDigest

#: Messages folded per summarizer call.
FOLD_PAGE = 200


@dataclass(frozen=True, slots=True)
class BufferCaps:
    max_messages: int
    max_tokens: int  # 0: no token cap


def window_start(recent: Sequence[MessageRecord], caps: BufferCaps) -> Mark | None:
    """Where the buffer begins: the oldest of the newest messages within both caps (None: empty)."""
    kept = list(recent[-caps.max_messages :])
    if caps.max_tokens:
        used, start = 0, len(kept)
        for index in range(len(kept) - 1, -1, -1):
            used += kept[index].token_count
            if used > caps.max_tokens:
                break
            start = index
        kept = kept[start:]
    return Mark(kept[0].created_at, kept[0].seq) if kept else None


def before(messages: Sequence[MessageRecord], limit: Mark | None) -> list[MessageRecord]:
    """The messages that sort before ``limit`` (all of them when there is no limit)."""
    if limit is None:
        return list(messages)
    return [m for m in messages if (m.created_at, m.seq) < (limit.at, limit.seq)]


class RollingSummaries:
    def __init__(
        self, db: Database, summarizer: Summarizer, tokens: TokenCounter, caps: BufferCaps, max_tokens: int, metrics: Metrics
    ) -> None:
        self._db = db
        self._summarizer = summarizer
        self._tokens = tokens
        self._caps = caps
        self._max_tokens = max_tokens
        self._metrics = metrics

    async def get(self, tenant_id: str, session_id: str) -> SessionDigest:
        return (await snapshot(self._db, tenant_id, session_id)).digest

    async def fold(self, tenant_id: str, session_id: str) -> int:
        """Fold every message that has left the buffer; returns how many were folded."""
        folded = 0
        while True:
            step = await self._fold_page(tenant_id, session_id)
            if step <= 0:
                return folded
            folded += step

    async def _fold_page(self, tenant_id: str, session_id: str) -> int:
        seen = (await snapshot(self._db, tenant_id, session_id)).digest
        async with self._db.transaction() as repos:
            recent = await repos.messages.recent(tenant_id, session_id, self._caps.max_messages)
            pending = await repos.messages.after(tenant_id, session_id, seen.summarized.until, FOLD_PAGE)
        if len(recent) < self._caps.max_messages and not self._caps.max_tokens:
            return 0
        fallen = before(pending, window_start(recent, self._caps))
        if not fallen:
            return 0
        text = await self._summarizer.fold(seen.summary, [turn(m) for m in fallen], self._max_tokens)
        async with self._db.transaction() as repos:
            current = await still_current(repos, seen, "summarized")
            if current is None:
                return -1  # another worker folded these; stop here
            await repos.digests.save(
                replace(
                    current,
                    summary=text,
                    summary_tokens=self._tokens.count(text),
                    summarized=advanced(current.summarized, fallen),
                    summary_at=now(),
                    updated_at=now(),
                )
            )
        self._metrics.summary_written()
        return len(fallen)
