"""Hybrid recall ranking: fuse the dense and the sparse candidates of one search.

Pure functions over plain data, no I/O. The recipe (tuned on part of LoCoMo, see
``bench/ranking_lab.py``):

Indexing. A memory is embedded and BM25-encoded from its content alone (for a chat turn with
an image, the content already reads ``"<text> [image: <caption>]"``). Who spoke, when, and
the neighbouring turns are used at query time through the payload.

Searching.

1. ``service.domain.query_plan.plan_query`` reads the query: the speakers it names, the
   dates it mentions, and ``search_text``, the query without the named speakers' names.
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
   use for them; callers may set them. These defaults are the API's (``SearchWeights``).

MMR (diversity) is left to the caller; it needs the dense vectors of the shortlist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.domain.query_plan import DatePeriod, QueryPlan

__all__ = ["RANKED_FIELDS", "Candidate", "RankedMemory", "RankingParams", "ScoreParts", "rank"]

_DAY = 86400.0

#: The payload keys :func:`rank` reads.
RANKED_FIELDS = ("speaker", "event_time", "session_id", "seq", "importance")


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

    # Scores first, as plain tuples; records only for what is returned (``limit``).
    scored: list[tuple[float, str, tuple[float, ...]]] = []
    for mid, payload in payloads.items():
        speaker = 0.0
        said = payload.get("speaker")
        if plan.speakers and said in plan.speakers:
            speaker = 1.0 if said == plan.speakers[0] else p.other_speaker_part
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

        score = (
            relevance[mid]
            + p.speaker_weight * speaker
            + p.date_weight * date
            + p.context_weight * context
            + p.recency_weight * recency
            + p.importance_weight * importance
        )
        scored.append((score, mid, (semantic[mid], keyword[mid], speaker, date, context, recency, importance)))

    scored.sort(key=lambda row: (-row[0], row[1]))
    return [
        RankedMemory(id=mid, score=score, parts=ScoreParts(*parts), payload=payloads[mid])
        for score, mid, parts in (scored if limit is None else scored[:limit])
    ]
