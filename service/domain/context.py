"""The main context: one call returns the most useful memory that fits a token budget.

It gathers the user's profile (the client's fields, then facts: ``service.domain.profiles``), the
session's rolling summary, the relevant long-term memories of the user across all of their sessions
(hybrid search with the query, each episode with the neighbouring turns that complete it, each
summary with its best sources), the chunks of knowledge documents that the same search ranks
(the user's own documents and the namespaces the request names) and the session's newest
messages, then packs them by the rules of ``service.domain.packing``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from service.digest.extractive import split_sentences
from service.domain.clock import now
from service.domain.digests import read_digest
from service.domain.messages import MessageService
from service.domain.packing import SOURCES_PER_SUMMARY, Inputs, Item, Packed, pack
from service.domain.profiles import Profile, read_profile
from service.domain.search import Found, FoundChunk, SearchQuery, SearchService
from service.domain.sessions import SessionService
from service.embedding.text import term_set
from service.observability.metrics import Metrics
from service.storage.ports import Database, Repos, TokenCounter
from service.storage.errors import VectorIndexUnreachable
from service.storage.records import BufferedMessage, MemoryRecord, SessionDigest, SessionRecord

log = logging.getLogger(__name__)

#: Search hits considered for the memories section, and how many of the best bring neighbours.
CANDIDATES = 60
WITH_NEIGHBOURS = 10
#: Score share a neighbouring turn, or a summary's source, inherits from the memory it completes.
NEIGHBOUR_WEIGHT = 0.6
SOURCE_WEIGHT = 0.9
#: A memory of more than ``EXCERPT_OVER`` sentences stands in the prompt as its (at most
#: ``EXCERPT_SENTENCES``) query-relevant sentences.
EXCERPT_OVER = 2
EXCERPT_SENTENCES = 2
#: A memory may take up to this share of the budget: one longer than that stands as the
#: query-relevant sentences that fit (one at least), so a tight budget holds more memories.
ITEM_SHARE = 1 / 40
ELISION = "…"

Shorten = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ContextRequest:
    tenant_id: str
    session_id: str
    max_tokens: int
    query: str | None = None
    types: tuple[str, ...] | None = None
    #: Shared document namespaces the documents section may draw on (beside the user's own).
    namespaces: tuple[str, ...] = ()


def one_line(text: str) -> str:
    return " ".join(text.split())


def date_header(at: datetime) -> str:
    return f"## {at.date().isoformat()}"  # strftime cost a tenth of packing


def message_item(message: BufferedMessage) -> Item:
    return Item(
        id=message.id,
        kind="message",
        text=f"{message.name or message.role}: {one_line(message.content)}",
        group=date_header(message.created_at),
        order=(message.created_at, message.seq),
    )


def memory_line(memory: MemoryRecord, content: str | None = None) -> str:
    """The memory's prompt line; ``content`` stands for its text (an excerpt) unless it is a summary."""
    if memory.type == "summary":
        return f"(summary) {' / '.join(one_line(line) for line in memory.content.splitlines() if line.strip())}"
    text = one_line(memory.content if content is None else content)
    return f"{memory.speaker}: {text}" if memory.speaker else f"({memory.type}) {text}"


def excerpt(content: str, query_stems: frozenset[str], fits: Callable[[str], bool] | None = None) -> str:
    """A long memory's sentences that share the most terms with the query, whole, in their order,
    gaps marked with an ellipsis: at most ``EXCERPT_SENTENCES`` of a memory of more than
    ``EXCERPT_OVER`` sentences, and of one that ``fits`` refuses, the best sentence and the next
    best while the excerpt still fits. The content as it is when it is short, is one sentence,
    or no sentence shares a term."""
    parts = split_sentences(content)
    if len(parts) < 2 or not query_stems or (len(parts) <= EXCERPT_OVER and (fits is None or fits(content))):
        return content
    shared = [len(query_stems & term_set(s)) for s in parts]
    ranked = sorted((i for i, n in enumerate(shared) if n > 0), key=lambda i: (-shared[i], i))[:EXCERPT_SENTENCES]
    if not ranked:
        return content
    kept = [ranked[0]]
    for i in ranked[1:]:
        if fits is None or fits(_joined(parts, [*kept, i])):
            kept.append(i)
    return _joined(parts, kept)


def _joined(parts: Sequence[str], kept: Sequence[int]) -> str:
    out, previous = [], -1
    for i in sorted(kept):
        out.append(parts[i] if i == previous + 1 else f"{ELISION} {parts[i]}")
        previous = i
    return " ".join(out) + (f" {ELISION}" if previous < len(parts) - 1 else "")


def _whole(content: str) -> str:
    return content


def memory_item(
    memory: MemoryRecord,
    score: float | None = None,
    companions: tuple[tuple[Item, float], ...] = (),
    shorten: Shorten = _whole,
) -> Item:
    return Item(
        id=memory.id,
        kind="summary" if memory.type == "summary" else "memory",
        text=memory_line(memory, None if memory.type == "summary" else shorten(memory.content)),
        score=score,
        group=date_header(memory.event_time),
        order=(memory.event_time, memory.session_id or "", memory.position or 0, memory.id),
        companions=companions,
        covers=frozenset(memory.source_ids) if memory.type == "summary" else frozenset(),
    )


def chunk_item(hit: FoundChunk) -> Item:
    """A document chunk, under its document's title, with the headings it stands under."""
    place = f"[{hit.chunk.heading}] " if hit.chunk.heading else ""
    return Item(
        id=hit.chunk.id,
        kind="document",
        text=f"{place}{one_line(hit.chunk.content)}",
        score=hit.score,
        group=f"## {one_line(hit.document.title)}",
        order=(hit.document.title, hit.document.id, hit.chunk.chunk_index),
    )


def field_line(key: str, value: object) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return f"- {key}: {one_line(shown)}"


def profile_items(profile: Profile) -> list[Item]:
    """The client's fields (in key order), then the user's ``profile`` memories (most valuable
    first). Semantic facts are left to recall: they enter the memories section when the query
    makes them relevant (measured: taking the top semantic facts here whatever the query cost
    0.7 and 1.6 points of evidence at 1,000 and 500 tokens on the LoCoMo tuning split)."""
    fields = [
        Item(id=f"{profile.user_id}#field-{key}", kind="field", text=field_line(key, value), order=(0, key))
        for key, value in sorted(profile.fields.items())
    ]
    facts = [
        Item(id=fact["id"], kind="memory", text=f"- {one_line(fact['content'])}", score=fact["importance"], order=(1, rank))
        for rank, fact in enumerate(f for f in profile.facts if f.get("type") == "profile")
    ]
    return fields + facts


def summary_items(digest: SessionDigest) -> list[Item]:
    lines = [line for line in digest.summary.splitlines() if line.strip()]
    return [
        Item(id=f"{digest.session_id}#summary-{i}", kind="summary", text=one_line(line), order=(i,))
        for i, line in enumerate(lines)
    ]


def overlap(query_stems: frozenset[str], text: str) -> float:
    """Share of the query's terms that ``text`` holds."""
    return len(query_stems & term_set(text)) / len(query_stems) if query_stems else 0.0


def default_query(recent: Sequence[BufferedMessage]) -> str | None:
    """The latest user message, else the latest message."""
    for message in reversed(recent):
        if message.role == "user" and message.content.strip():
            return message.content
    return next((m.content for m in reversed(recent) if m.content.strip()), None)


class ContextService:
    def __init__(
        self,
        db: Database,
        sessions: SessionService,
        messages: MessageService,
        search: SearchService,
        tokens: TokenCounter,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._messages = messages
        self._search = search
        self._tokens = tokens
        self._metrics = metrics

    async def build(self, request: ContextRequest) -> Packed:
        started = time.perf_counter()
        session = await self._sessions.get(request.tenant_id, request.session_id)
        # Only the session (its user) comes first: the digest, the profile, the buffer and the
        # recall (when the query is given) are read side by side.
        around = self._surroundings(request.tenant_id, session)
        buffered = self._messages.buffer(request.tenant_id, request.session_id, None, None)
        if request.query is not None:
            (digest, profile), view, (memories, documents) = await asyncio.gather(
                around, buffered, self._recall(request, session.user_id, request.query)
            )
        else:
            (digest, profile), view = await asyncio.gather(around, buffered)
            query = default_query(view.messages)
            memories, documents = await self._recall(request, session.user_id, query) if query else ([], [])
        inputs = Inputs(
            profile=profile,
            summary=summary_items(digest),
            memories=memories,
            documents=documents,
            recent=[message_item(m) for m in view.messages],
        )
        packed = pack(inputs, request.max_tokens, self._tokens)
        self._metrics.observe_context(time.perf_counter() - started)
        return packed

    async def _surroundings(self, tenant_id: str, session: SessionRecord) -> tuple[SessionDigest, list[Item]]:
        """The session's digest and its user's profile lines, read in one transaction."""
        async with self._db.transaction() as repos:
            digest = await read_digest(repos, session)
            profile = await read_profile(repos, tenant_id, session.user_id, now())
        return digest, profile_items(profile)

    async def _recall(self, request: ContextRequest, user_id: str, query: str) -> tuple[list[Item], list[Item]]:
        """Memories and document chunks for the query, from one search ranking both (none for a
        blank query)."""
        if not query.strip():
            return [], []
        search = SearchQuery(
            tenant_id=request.tenant_id,
            query=query,
            user_id=user_id,
            limit=CANDIDATES,
            types=request.types,
            sources=frozenset({"memories", "documents"}),
            namespaces=request.namespaces,
        )
        try:
            hits = await self._search.search(search)
        except VectorIndexUnreachable:
            # Recall is down: the chatbot still gets its profile, summary and recent messages.
            log.warning("vector index unreachable: context without recalled memories")
            return [], []
        chunks = [chunk_item(h) for h in hits if isinstance(h, FoundChunk)]
        return await self._memories(request, [h for h in hits if isinstance(h, Found)], query), chunks

    async def _memories(self, request: ContextRequest, hits: list[Found], query: str) -> list[Item]:
        stems = term_set(query)
        allowance = request.max_tokens * ITEM_SHARE
        fits = lambda text: self._tokens.count(text) <= allowance  # noqa: E731 - one use, named for reading
        shorten = partial(excerpt, query_stems=stems, fits=fits)
        async with self._db.transaction() as repos:
            neighbours = await self._neighbours(repos, request.tenant_id, hits[:WITH_NEIGHBOURS], shorten)
            sources = await self._sources(repos, request.tenant_id, hits, stems, shorten)
        return [
            memory_item(hit.memory, hit.score, neighbours.get(hit.memory.id, ()) + sources.get(hit.memory.id, ()), shorten)
            for hit in hits
        ]

    @staticmethod
    async def _neighbours(
        repos: Repos, tenant_id: str, hits: Sequence[Found], shorten: Shorten
    ) -> dict[str, tuple[tuple[Item, float], ...]]:
        """For each episode among ``hits``: the turns just before and after it in its session."""
        places = {
            h.memory.id: [(h.memory.session_id, h.memory.position + d) for d in (-1, 1)]
            for h in hits
            if h.memory.session_id is not None and h.memory.position is not None
        }
        found = await repos.episodes.at_positions(tenant_id, [p for ps in places.values() for p in ps if p[1] >= 0])  # type: ignore[misc]
        by_place = {(m.session_id, m.position): m for m in found}
        return {
            mid: tuple((memory_item(by_place[p], shorten=shorten), NEIGHBOUR_WEIGHT) for p in ps if p in by_place)
            for mid, ps in places.items()
        }

    @staticmethod
    async def _sources(
        repos: Repos, tenant_id: str, hits: Sequence[Found], query_stems: frozenset[str], shorten: Shorten
    ) -> dict[str, tuple[tuple[Item, float], ...]]:
        """For each summary among ``hits``: its sources that answer the query best (by shared terms)."""
        summaries = [h.memory for h in hits if h.memory.type == "summary"]
        wanted = list(dict.fromkeys(s for m in summaries for s in m.source_ids))
        if not wanted:
            return {}
        rows = {m.id: m for m in await repos.memories.get_many(tenant_id, wanted)}
        out: dict[str, tuple[tuple[Item, float], ...]] = {}
        for summary in summaries:
            scored = sorted(
                ((overlap(query_stems, rows[s].content), rows[s]) for s in summary.source_ids if s in rows),
                key=lambda pair: -pair[0],
            )
            out[summary.id] = tuple((memory_item(m, shorten=shorten), SOURCE_WEIGHT * share) for share, m in scored[:SOURCES_PER_SUMMARY] if share > 0)
        return out
