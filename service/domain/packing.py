"""Packing a prompt into a token budget: pure functions over plain items, no I/O.

The prompt has up to five sections, in this order, each under a heading:

    # Profile            the user's profile facts, one per line
    # Summary            the session's rolling summary (whole sentences, one line each)
    # Memories           relevant long-term memories, grouped under date headers
    # Documents          relevant chunks of knowledge documents, under their document's title
    # Recent messages    the newest messages of the session, under date headers

Lines read ``<speaker>: <text>``; a memory that nobody said carries its kind instead
(``(semantic) ...``, ``(summary) ...``). Lines of one date share one ``## YYYY-MM-DD`` header.

Budget rules (``pack``). Items are taken whole or not at all, in this order of claims:

1. the newest messages, newest first, while they fit in ``RECENT_SHARE`` of the budget;
2. profile lines, by rank, within ``PROFILE_SHARE``;
3. rolling-summary lines, newest first, within ``SUMMARY_SHARE``;
4. document chunks, best score first, within ``DOCUMENTS_SHARE`` (one that does not fit is
   skipped, smaller ones may still enter);
5. memories, best score first, in whatever is left: a memory that does not fit is skipped and
   smaller ones may still enter; when one is taken, its companions (the neighbouring turns that
   complete it, the best sources of a summary) become candidates at a lower score; at most
   ``SOURCES_PER_SUMMARY`` raw memories enter beside a summary that covers them (the summary
   stands for the rest); an item whose text nearly repeats one already taken is folded away;
6. more document chunks, best first, in whatever memories left;
7. older messages of the session, newest first, while they still fit.

Costs are token counts of the lines and headers; the rendered prompt is then counted exactly and,
should it still exceed the budget, the last-claimed items are dropped until it fits.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.embedding.text import term_set
from service.storage.ports import TokenCounter

SectionName = Literal["profile", "summary", "memories", "documents", "recent"]
ItemKind = Literal["memory", "message", "summary", "field", "document"]

SECTIONS: tuple[SectionName, ...] = ("profile", "summary", "memories", "documents", "recent")
TITLES: dict[SectionName, str] = {
    "profile": "# Profile",
    "summary": "# Summary of earlier conversation",
    "memories": "# Memories",
    "documents": "# Documents",
    "recent": "# Recent messages",
}
RECENT_SHARE = 0.4
PROFILE_SHARE = 0.1
SUMMARY_SHARE = 0.2
DOCUMENTS_SHARE = 0.2
SOURCES_PER_SUMMARY = 2
#: Jaccard similarity of two lines' stems above which the later one is folded away.
NEAR_DUPLICATE = 0.8


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the prompt.

    ``group`` is the header it sits under (``## 2023-05-08``) or None; ``order`` sorts lines for
    reading (time, session, turn); ``companions`` may follow it into the prompt at
    ``score * weight``; ``covers`` are the ids a summary stands for.
    """

    id: str
    kind: ItemKind
    text: str
    score: float | None = None
    group: str | None = None
    order: tuple[object, ...] = ()
    companions: tuple[tuple[Item, float], ...] = ()
    covers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Inputs:
    profile: Sequence[Item] = ()
    summary: Sequence[Item] = ()  # oldest first
    memories: Sequence[Item] = ()  # best first
    recent: Sequence[Item] = ()  # oldest first
    documents: Sequence[Item] = ()  # best first


@dataclass(frozen=True, slots=True)
class Section:
    name: SectionName
    text: str
    tokens: int
    items: list[Item]
    item_tokens: list[int]  # each item's line, counted alone


@dataclass(frozen=True, slots=True)
class Packed:
    prompt: str
    tokens: int
    max_tokens: int
    sections: list[Section]


# --------------------------------------------------------------------------- rendering


def render_lines(items: Sequence[Item]) -> list[str]:
    """The lines of one section: items in reading order, a header before each run of a group."""
    lines: list[str] = []
    current: str | None = None
    for item in sorted(items, key=lambda i: i.order):
        if item.group is not None and item.group != current:
            lines.append(item.group)
        current = item.group
        lines.append(item.text)
    return lines


def render_section(name: SectionName, items: Sequence[Item]) -> str:
    return "\n".join([TITLES[name], *render_lines(items)]) if items else ""


def render(chosen: dict[SectionName, list[Item]]) -> str:
    return "\n\n".join(text for name in SECTIONS if (text := render_section(name, chosen[name])))


# --------------------------------------------------------------------------- claiming


@dataclass(slots=True)
class _Claims:
    """What has been taken so far, with its estimated cost."""

    tokens: TokenCounter
    chosen: dict[SectionName, list[Item]] = field(default_factory=lambda: {n: [] for n in SECTIONS})
    order: list[tuple[SectionName, Item]] = field(default_factory=list)
    used: int = 0
    ids: set[str] = field(default_factory=set)
    groups: dict[SectionName, set[str]] = field(default_factory=lambda: {n: set() for n in SECTIONS})
    counted: dict[str, int] = field(default_factory=dict)

    def line(self, text: str) -> int:
        """Tokens of one line with its newline (each distinct line is counted once)."""
        if text not in self.counted:
            self.counted[text] = self.tokens.count(text + "\n")
        return self.counted[text]

    def cost(self, name: SectionName, item: Item) -> int:
        cost = self.line(item.text)
        if not self.chosen[name]:
            cost += self.line(TITLES[name]) + 1
        if item.group is not None and item.group not in self.groups[name]:
            cost += self.line(item.group)
        return cost

    def take(self, name: SectionName, item: Item, limit: int) -> bool:
        """Take ``item`` if it is new and its cost keeps the total within ``limit``."""
        if item.id in self.ids:
            return False
        cost = self.cost(name, item)
        if self.used + cost > limit:
            return False
        self.used += cost
        self.ids.add(item.id)
        self.chosen[name].append(item)
        if item.group is not None:
            self.groups[name].add(item.group)
        self.order.append((name, item))
        return True


def _take_run(claims: _Claims, name: SectionName, items: Iterable[Item], limit: int) -> None:
    """Take items in the given order until the first that does not fit."""
    for item in items:
        if item.id not in claims.ids and not claims.take(name, item, limit):
            return


def _take_best(claims: _Claims, name: SectionName, items: Iterable[Item], limit: int) -> None:
    """Take items in the given order, skipping those that do not fit."""
    for item in items:
        claims.take(name, item, limit)


def _near_duplicate(stems: frozenset[str], taken: Sequence[frozenset[str]]) -> bool:
    """Whether ``stems`` nearly repeat one of ``taken`` (a Jaccard similarity of at least
    ``NEAR_DUPLICATE``, which two sets can only reach when their sizes are that close)."""
    if not stems:
        return False
    size = len(stems)
    low, high = size * NEAR_DUPLICATE, size / NEAR_DUPLICATE
    return any(low <= len(t) <= high and len(stems & t) / len(stems | t) >= NEAR_DUPLICATE for t in taken if t)


class _MemoryPicker:
    """Step 4: memories by score, with companions, summary cover and near-duplicate folding."""

    def __init__(self, claims: _Claims, limit: int) -> None:
        self._claims = claims
        self._limit = limit
        self._heap: list[tuple[float, int, Item]] = []
        self._pushed = 0
        self._stems: list[frozenset[str]] = []
        self._cover_left: dict[str, int] = {}  # id a taken summary covers -> that summary
        self._sources_taken: dict[str, int] = {}

    def push(self, item: Item, score: float) -> None:
        heapq.heappush(self._heap, (-score, self._pushed, item))
        self._pushed += 1

    def _covered_out(self, item: Item) -> bool:
        summary = self._cover_left.get(item.id)
        return summary is not None and self._sources_taken.get(summary, 0) >= SOURCES_PER_SUMMARY

    def _note(self, item: Item, stems: frozenset[str]) -> None:
        self._stems.append(stems)
        if summary := self._cover_left.get(item.id):
            self._sources_taken[summary] = self._sources_taken.get(summary, 0) + 1
        if item.covers:
            taken = self._claims.ids & item.covers
            self._sources_taken[item.id] = len(taken)
            for covered in item.covers - taken:
                self._cover_left.setdefault(covered, item.id)
        for companion, weight in item.companions:
            self.push(companion, (item.score or 0.0) * weight)

    def run(self, items: Sequence[Item]) -> None:
        for item in items:
            self.push(item, item.score or 0.0)
        while self._heap:
            neg, _, item = heapq.heappop(self._heap)
            if item.id in self._claims.ids or self._covered_out(item):
                continue
            stems = term_set(item.text)
            if _near_duplicate(stems, self._stems):
                continue
            scored = Item(**{**_fields(item), "score": -neg})
            if self._claims.take("memories", scored, self._limit):
                self._note(scored, stems)


def _fields(item: Item) -> dict[str, object]:
    return {name: getattr(item, name) for name in Item.__dataclass_fields__}


# --------------------------------------------------------------------------- the whole


def _fit(claims: _Claims, max_tokens: int) -> tuple[str, int]:
    """Render, and drop the last-claimed items while the exact count exceeds the budget; the
    prompt and its count."""
    prompt = render(claims.chosen)
    count = claims.tokens.count(prompt)
    while claims.order and count > max_tokens:
        name, item = claims.order.pop()
        claims.chosen[name].remove(item)
        prompt = render(claims.chosen)
        count = claims.tokens.count(prompt)
    return prompt, count


def pack(inputs: Inputs, max_tokens: int, tokens: TokenCounter) -> Packed:
    """The prompt for ``max_tokens`` by the rules in this module's docstring."""
    claims = _Claims(tokens)
    newest_first = list(reversed(inputs.recent))
    _take_run(claims, "recent", newest_first, int(max_tokens * RECENT_SHARE))
    _take_best(claims, "profile", inputs.profile, claims.used + int(max_tokens * PROFILE_SHARE))
    _take_run(claims, "summary", reversed(inputs.summary), claims.used + int(max_tokens * SUMMARY_SHARE))
    _take_best(claims, "documents", inputs.documents, claims.used + int(max_tokens * DOCUMENTS_SHARE))
    _MemoryPicker(claims, max_tokens).run([m for m in inputs.memories if m.id not in claims.ids])
    _take_best(claims, "documents", inputs.documents, max_tokens)
    _take_run(claims, "recent", newest_first, max_tokens)
    prompt, count = _fit(claims, max_tokens)
    sections = []
    for name in SECTIONS:
        text = render_section(name, claims.chosen[name])
        items = sorted(claims.chosen[name], key=lambda i: i.order)
        counts = [tokens.count(i.text) for i in items]
        sections.append(Section(name, text, tokens.count(text) if text else 0, items, counts))
    return Packed(prompt=prompt, tokens=count, max_tokens=max_tokens, sections=sections)
