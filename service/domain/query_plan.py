"""Query planning for recall: read a query once against the user's known speakers.

Pure functions, no I/O. :func:`plan_query` finds the speakers a query names (in order), the
calendar dates it mentions (:func:`parse_dates`), and ``search_text``: the query without the
named speakers' names, which is what the dense embedding and the sparse (BM25) query are
computed from. Who said a thing is matched through the payload at fusion time
(``service.domain.ranking``), so a name left in the query would only pull in the turns that
address or mention that person.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.embedding.text import STOPWORDS, words

__all__ = ["DatePeriod", "QueryPlan", "parse_dates", "plan_query"]


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


#: Messages posted without a name keep their role as the speaker. A query in the first person is
#: then the user asking about what they said; in the second person, about what the assistant said.
ROLE_PRONOUNS: dict[str, frozenset[str]] = {
    "user": frozenset({"i", "me", "my", "mine", "myself"}),
    "assistant": frozenset({"you", "your", "yours", "yourself"}),
}


def _addressed_roles(query_words: Sequence[str], speakers: Collection[str]) -> tuple[str, ...]:
    """The roles the query's pronouns point at, among ``speakers``, in the order it uses them."""
    first: dict[str, int] = {}
    for i, w in enumerate(query_words):
        for role, pronouns in ROLE_PRONOUNS.items():
            if w in pronouns and role in speakers:
                first.setdefault(role, i)
    return tuple(sorted(first, key=first.__getitem__))


def plan_query(text: str, speakers: Collection[str] = ()) -> QueryPlan:
    """Read a query once.

    ``speakers`` are the user's known speaker names (the distinct ``speaker`` values of their
    memories). The plan holds the speakers the query names, in order, the dates it mentions,
    and ``search_text``: the query without the named speakers' names, which is what the dense
    embedding and the sparse (BM25) query are computed from. Who said a thing is matched
    through the payload instead, so the name does not pull in the turns that merely address
    or mention that person. When nothing but stopwords would remain, the query is kept whole.

    A user whose messages carry roles rather than names (``user``, ``assistant``) has those as
    speakers: then "I" and "my" name the ``user``, "you" and "your" the ``assistant``, after any
    speaker named outright (pronouns stay in the search text: they name nobody else).
    """
    query_words = words(text)
    named = _named_speakers(query_words, speakers)
    search_text = text
    if named:
        drop = {w for s in named for w in words(s)}
        if any(w not in STOPWORDS and w not in drop for w in query_words):
            search_text = _strip_words(text, drop)
    roles = tuple(r for r in _addressed_roles(query_words, speakers) if r not in named)
    return QueryPlan(text=text, search_text=search_text, speakers=named + roles, periods=parse_dates(text))
