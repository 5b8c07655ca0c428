"""Hybrid recall ranking: fuse the dense and the sparse candidates of one search.

Pure functions over plain data, no I/O. The recipe (tuned on LoCoMo, see
``bench/ranking_lab.py``):

Indexing. A memory is embedded and BM25-encoded from its content alone (for a chat turn with
an image, the content already reads ``"<text> [image: <caption>]"``): :func:`index_texts`.
Who spoke, when, and the neighbouring turns are used at query time through the payload.

Searching.

1. :func:`plan_query` reads the query against the user's known speaker names: the speakers
   it names (in order), the calendar dates it mentions, and ``search_text``, the query without
   the named speakers' names. Who said a thing is matched through the payload, so a name left
   in the query would only pull in the turns that address or mention that person.
2. The engine returns the dense top K (cosine of the embedded ``search_text``) and the sparse
   top K (BM25 of ``search_text``) for the user, K = 200, each hit with its payload.
3. :func:`rank` scores the union of both lists. Each memory gets parts in [0, 1]:

   - ``semantic``: cosine, min-max scaled over the pool (a sparse-only hit takes the lowest
     cosine seen, an upper bound of its true value),
   - ``keyword``: BM25 divided by the best BM25 of the pool (0 when not matched),
   - ``speaker``: 1 when the memory's speaker is the first speaker the query names,
     ``other_speaker_part`` (0.5) for a speaker it names later, else 0,
   - ``date``: 1 when the memory's event time falls inside a date the query mentions,
     ``exp(-gap / date_scale_days)`` outside it,
   - ``context``: the best relevance ``(w_sem*semantic + w_kw*keyword) / (w_sem + w_kw)``
     of its neighbours in the same session (``seq`` +- 1) within the pool: an answer is
     often relevant through the question before it, and a question through its answer,
   - ``recency``: ``0.5 ** (age / half_life)`` (needs ``now``); ``importance``: the
     payload's importance.

   ``score = w_sem*semantic + w_kw*keyword + w_spk*speaker + w_date*date + w_ctx*context
   + w_rec*recency + w_imp*importance`` with the defaults of :class:`RankingParams`
   (1, 1, 1, 0.8, 0.9, 0, 0): recency and importance weigh 0 because the benchmark has no
   use for them; callers may set them.
4. Optionally, when K is small next to the user's memory count, fetch the missing
   neighbours of the best candidates (:func:`neighbours_to_fetch`) and rank again.

MMR (diversity) is left to the caller; it needs the dense vectors of the shortlist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.embedding.text import STOPWORDS, words

__all__ = [
    "Candidate",
    "DatePeriod",
    "IndexTexts",
    "QueryPlan",
    "RankedMemory",
    "RankingParams",
    "ScoreParts",
    "index_texts",
    "neighbours_to_fetch",
    "parse_dates",
    "plan_query",
    "rank",
]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One hit of the dense or the sparse search, with its payload (speaker, event_time as
    epoch seconds, session_id, seq, importance, ...)."""

    id: str
    score: float
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankingParams:
    semantic_weight: float = 1.0
    keyword_weight: float = 1.0
    speaker_weight: float = 1.0
    other_speaker_part: float = 0.5  # speaker part of a speaker named after the first one
    date_weight: float = 0.8
    date_scale_days: float = 7.0
    context_weight: float = 0.9
    recency_weight: float = 0.0
    recency_half_life_days: float = 30.0
    importance_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.date_scale_days <= 0 or self.recency_half_life_days <= 0:
            raise ValueError("date_scale_days and recency_half_life_days must be > 0")


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """Why a memory ranked where it did; each part lies in [0, 1] before its weight."""

    semantic: float = 0.0
    keyword: float = 0.0
    speaker: float = 0.0
    date: float = 0.0
    context: float = 0.0
    recency: float = 0.0
    importance: float = 0.0


@dataclass(frozen=True, slots=True)
class RankedMemory:
    id: str
    score: float
    parts: ScoreParts
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DatePeriod:
    """A half-open interval [start, end) of epoch seconds (UTC) named in a query."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class QueryPlan:
    text: str
    search_text: str
    speakers: tuple[str, ...] = ()  # named speakers, in the order the query names them
    periods: tuple[DatePeriod, ...] = ()


@dataclass(frozen=True, slots=True)
class IndexTexts:
    dense: str
    sparse: str


# --------------------------------------------------------------------------- index texts


def index_texts(
    content: str,
    *,
    speaker: str | None = None,
    previous: str | None = None,
    include_speaker: bool = False,
    include_previous: bool = False,
) -> IndexTexts:
    """The texts a memory is embedded and BM25-encoded with.

    The tuned recipe indexes the content alone (for a chat turn with an image: the text plus
    ``[image: caption]``, as the memory's content already holds it). Who spoke is matched
    through the payload (the ``speaker`` part of :func:`rank`) and the previous turn through
    the ``context`` part, both of which measured better than putting the name or the
    previous turn into the indexed text. The switches exist for experiments.
    """
    text = content.strip()
    if include_speaker and speaker:
        text = f"{speaker}: {text}"
    if include_previous and previous:
        text = f"{previous.strip()}\n{text}"
    return IndexTexts(dense=text, sparse=text)


# --------------------------------------------------------------------------- the query

_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<{0}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAYNUM = r"(?P<{0}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{0}>(?:19|20)\d\d)"
_DATE_PATTERNS = (
    # 2022-11-09
    re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>[01]?\d)-(?P<d>[0-3]?\d)\b"),
    # 9 November, 2022 / 9th of Nov 2022 / 9 November
    re.compile(
        r"\b" + _DAYNUM.format("d") + r"\s+(?:of\s+)?" + _MONTH.format("mon")
        + r"(?:,?\s+" + _YEAR.format("y") + r")?\b"
    ),
    # November 9, 2022 / Nov 9th 2022 / November 9
    re.compile(
        r"\b" + _MONTH.format("mon") + r"\s+" + _DAYNUM.format("d")
        + r"(?:,?\s+" + _YEAR.format("y") + r")?\b(?!\s*(?:19|20)\d\d)"
    ),
    # November 2022 / Nov, 2022
    re.compile(r"\b" + _MONTH.format("mon") + r",?\s+" + _YEAR.format("y") + r"\b"),
    # in 2022
    re.compile(r"\b(?:in|during|of|since|by)\s+" + _YEAR.format("y") + r"\b"),
)  # fmt: skip


def parse_dates(text: str) -> tuple[DatePeriod, ...]:
    """Calendar dates written in ``text`` as UTC periods: a day, a month or a year.

    Only absolute dates with a year count (``9 November, 2022``, ``Nov 9th 2022``,
    ``November 2022``, ``2022-11-09``, ``in 2022``): without a year, or for relative words
    ("last week"), the reference time is ambiguous for stored conversations, so they are
    left to the semantic and keyword parts. Each span of the text is read once, the most
    precise pattern first.
    """
    lowered = text.lower()
    taken: list[tuple[int, int]] = []
    periods: list[DatePeriod] = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(lowered):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            groups = match.groupdict()
            year = int(groups["y"]) if groups.get("y") else None
            if year is None:
                continue
            month = _MONTHS[groups["mon"]] if groups.get("mon") else None
            if month is None and groups.get("m"):
                month = int(groups["m"])
            day = int(groups["d"]) if groups.get("d") else None
            try:
                if day is not None and month is not None:
                    start = datetime(year, month, day, tzinfo=UTC)
                    end = start + timedelta(days=1)
                elif month is not None:
                    start = datetime(year, month, 1, tzinfo=UTC)
                    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
                else:
                    start = datetime(year, 1, 1, tzinfo=UTC)
                    end = datetime(year + 1, 1, 1, tzinfo=UTC)
            except ValueError:  # 31 February and the like
                continue
            taken.append((match.start(), match.end()))
            periods.append(DatePeriod(start.timestamp(), end.timestamp()))
    return tuple(periods)


def _named_speakers(query_words: Sequence[str], speakers: Collection[str]) -> tuple[str, ...]:
    """Speakers whose full name, or whose first name (3+ letters, not a stopword), occurs
    among the query's words, ordered by where the query first names them."""
    position = {}
    for i, w in enumerate(query_words):
        position.setdefault(w, i)
    named: list[tuple[int, str]] = []
    for speaker in set(speakers):
        parts = words(speaker)
        if not parts:
            continue
        first = parts[0]
        if all(p in position for p in parts):
            named.append((min(position[p] for p in parts), speaker))
        elif len(first) >= 3 and first not in STOPWORDS and first in position:
            named.append((position[first], speaker))
    return tuple(s for _, s in sorted(named))


def _strip_words(text: str, drop: Collection[str]) -> str:
    """``text`` without the given words (case-insensitive, with a possessive ``'s``)."""
    alternatives = "|".join(re.escape(w) for w in sorted(drop, key=len, reverse=True))
    pattern = re.compile(rf"(?<![^\W_])(?:{alternatives})(?:['\u2019]s)?(?![^\W_])", re.IGNORECASE)
    stripped = pattern.sub(" ", text)
    stripped = re.sub(r"\s+([?.!,;:])", r"\1", stripped)
    return re.sub(r"\s{2,}", " ", stripped).strip()


def plan_query(text: str, speakers: Collection[str] = ()) -> QueryPlan:
    """Read a query once.

    ``speakers`` are the user's known speaker names (the distinct ``speaker`` values of their
    memories). The plan holds the speakers the query names, in order, the dates it mentions,
    and ``search_text``: the query without the named speakers' names, which is what the dense
    embedding and the sparse (BM25) query are computed from. Who said a thing is matched
    through the payload instead, so the name does not pull in the turns that merely address
    or mention that person. When nothing but stopwords would remain, the query is kept whole.
    """
    query_words = words(text)
    named = _named_speakers(query_words, speakers)
    search_text = text
    if named:
        drop = {w for s in named for w in words(s)}
        if any(w not in STOPWORDS and w not in drop for w in query_words):
            search_text = _strip_words(text, drop)
    return QueryPlan(text=text, search_text=search_text, speakers=named, periods=parse_dates(text))


# --------------------------------------------------------------------------- fusion


def _date_part(event_time: float | None, periods: Sequence[DatePeriod], scale_days: float) -> float:
    if event_time is None or not periods:
        return 0.0
    best = 0.0
    for period in periods:
        if period.start <= event_time < period.end:
            return 1.0
        gap = (period.start - event_time) if event_time < period.start else (event_time - period.end)
        best = max(best, math.exp(-gap / (scale_days * _DAY)))
    return best


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rank(
    plan: QueryPlan,
    dense: Sequence[Candidate],
    sparse: Sequence[Candidate],
    params: RankingParams | None = None,
    *,
    now: float | None = None,
    limit: int | None = None,
) -> list[RankedMemory]:
    """Fuse the dense and sparse candidates of one query; best first (ties by id).

    ``dense`` and ``sparse`` hold the engine's hits (cosine, BM25) for the same user; a
    memory may appear in either or both. ``now`` (epoch seconds) is needed for the recency
    part (0 without it). Every part is reported even when its weight is 0.
    """
    p = params or RankingParams()
    payloads: dict[str, Mapping[str, Any]] = {}
    cosine: dict[str, float] = {}
    bm25: dict[str, float] = {}
    for hit in dense:
        payloads.setdefault(hit.id, hit.payload)
        cosine[hit.id] = max(hit.score, cosine.get(hit.id, -math.inf))
    for hit in sparse:
        payloads.setdefault(hit.id, hit.payload)
        bm25[hit.id] = max(hit.score, bm25.get(hit.id, -math.inf))
    if not payloads:
        return []

    cos_floor = min(cosine.values()) if cosine else 0.0
    cos_top = max(cosine.values()) if cosine else 0.0
    cos_span = cos_top - cos_floor
    bm25_top = max(bm25.values()) if bm25 else 0.0

    semantic: dict[str, float] = {}
    keyword: dict[str, float] = {}
    for mid in payloads:
        c = cosine.get(mid, cos_floor)
        semantic[mid] = (c - cos_floor) / cos_span if cos_span > 0 else (1.0 if mid in cosine else 0.0)
        keyword[mid] = max(bm25.get(mid, 0.0), 0.0) / bm25_top if bm25_top > 0 else 0.0

    # Neighbours (same session, seq +- 1) present in the pool.
    by_position: dict[tuple[Any, int], str] = {}
    for mid, payload in payloads.items():
        seq = payload.get("seq")
        session = payload.get("session_id")
        if session is not None and isinstance(seq, int):
            by_position[(session, seq)] = mid

    relevance = {m: p.semantic_weight * semantic[m] + p.keyword_weight * keyword[m] for m in payloads}
    rel_scale = p.semantic_weight + p.keyword_weight

    ranked: list[RankedMemory] = []
    for mid, payload in payloads.items():
        speaker = 0.0
        if plan.speakers and payload.get("speaker") in plan.speakers:
            speaker = 1.0 if payload.get("speaker") == plan.speakers[0] else p.other_speaker_part
        event_time = _as_float(payload.get("event_time"))
        date = _date_part(event_time, plan.periods, p.date_scale_days)

        context = 0.0
        seq = payload.get("seq")
        session = payload.get("session_id")
        if session is not None and isinstance(seq, int):
            for other in (by_position.get((session, seq - 1)), by_position.get((session, seq + 1))):
                if other is not None:
                    context = max(context, relevance[other])
        context = min(context / rel_scale, 1.0) if rel_scale > 0 else 0.0

        recency = 0.0
        if now is not None and event_time is not None:
            age_days = max(now - event_time, 0.0) / _DAY
            recency = 0.5 ** (age_days / p.recency_half_life_days)

        importance = min(max(_as_float(payload.get("importance")) or 0.0, 0.0), 1.0)

        parts = ScoreParts(
            semantic=semantic[mid],
            keyword=keyword[mid],
            speaker=speaker,
            date=date,
            context=context,
            recency=recency,
            importance=importance,
        )
        score = (
            relevance[mid]
            + p.speaker_weight * speaker
            + p.date_weight * date
            + p.context_weight * context
            + p.recency_weight * recency
            + p.importance_weight * importance
        )
        ranked.append(RankedMemory(id=mid, score=score, parts=parts, payload=payload))

    ranked.sort(key=lambda r: (-r.score, r.id))
    return ranked if limit is None else ranked[:limit]


def neighbours_to_fetch(
    ranked: Sequence[RankedMemory], top: int = 20
) -> list[tuple[Any, int]]:
    """Positions ``(session_id, seq)`` of the previous and next turns of the best ``top``
    memories that are missing from the pool, in rank order, without repeats.

    An optional second step when K is small next to the user's memory count: the caller
    fetches those memories (with their dense vectors), adds them to the dense candidates
    with their cosine to the query, and calls :func:`rank` again, so a turn can rise through
    its ``context`` even when neither search returned it. On LoCoMo it adds about one point
    of recall@10 at K = 50-100 and nothing at K = 200.
    """
    present = {
        (r.payload.get("session_id"), r.payload.get("seq"))
        for r in ranked
        if r.payload.get("session_id") is not None and isinstance(r.payload.get("seq"), int)
    }
    wanted: list[tuple[Any, int]] = []
    for r in ranked[:top]:
        session = r.payload.get("session_id")
        seq = r.payload.get("seq")
        if session is None or not isinstance(seq, int):
            continue
        for position in ((session, seq - 1), (session, seq + 1)):
            if position[1] >= 0 and position not in present and position not in wanted:
                wanted.append(position)
    return wanted
