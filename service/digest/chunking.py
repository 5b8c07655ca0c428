"""Splitting a knowledge document into chunks that fit a token budget, for retrieval (RAG).

Recursive, coarse to fine. A document is first cut into sections at its Markdown ATX headings
(``#`` to ``######``, not inside fenced code); every chunk of a section keeps the path of headings
it stands under (``("Install", "On Linux")``). A section that does not fit ``max_tokens`` is cut
at blank lines (paragraphs), a paragraph that does not fit at line breaks, a line after its
sentences, a sentence between its words, and only a single word longer than the budget is cut
inside. The pieces are then packed greedily, in order, into chunks of at most ``max_tokens``;
a chunk after the first of its section starts with up to ``overlap_tokens`` of the previous
chunk's end (whole words), and never crosses into the next section.

Every chunk is ``text[start:end]`` with its white space trimmed, counted exactly with the given
counter. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Chunk", "MIN_CHUNK_TOKENS", "chunk_text"]

#: The smallest budget: one character is at most four byte-level tokens.
MIN_CHUNK_TOKENS = 8
#: Characters one token may cover at most, bounding the search for a cut inside a long word.
_MAX_CHARS_PER_TOKEN = 64

Count = Callable[[str], int]

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: Where a piece may begin, coarse to fine: the white space that group 1 matches goes with the
#: piece after it (BPE tokens carry their leading space, so piece counts add up).
_LEVELS = (
    re.compile(r"(\n[ \t]*\n\s*)"),  # paragraphs
    re.compile(r"(\n\s*)"),  # lines
    re.compile(r"[.!?…。！？][\"'’”)\]]*(\s+)"),  # sentences
    re.compile(r"(\s+)"),  # words
)
_WORD_START = re.compile(r"(?<=\s)\S")


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text == document[start:end]``; ``headings`` is the path of headings it stands under."""

    start: int
    end: int
    text: str
    tokens: int
    headings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Section:
    start: int
    end: int
    headings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int
    end: int
    tokens: int


def chunk_text(text: str, count: Count, max_tokens: int, overlap_tokens: int = 0) -> list[Chunk]:
    """The chunks of ``text`` in order; each has at most ``max_tokens`` tokens by ``count``."""
    if max_tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_CHUNK_TOKENS}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")
    splitter = _Splitter(text, count, max_tokens, overlap_tokens)
    return [chunk for section in _sections(text) for chunk in splitter.section(section)]


def _sections(text: str) -> list[_Section]:
    """Spans from one heading line to the next. Blank spans are dropped, and a heading with
    nothing under it but white space joins the section after it (whose path includes it)."""
    marks: list[tuple[int, int, tuple[str, ...]]] = [(0, 0, ())]  # (start, body start, path)
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    position = 0
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if opened:  # a fence line opens or closes code; it is never a heading
            marker = opened.group(1)[0]
            fence = marker if fence is None else (None if marker == fence else fence)
        elif fence is None and (heading := _HEADING.match(line.rstrip("\r"))) and heading.group(2):
            level = len(heading.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading.group(2)))
            marks.append((position, position + len(line), tuple(title for _, title in stack)))
        position += len(line) + 1
    sections: list[_Section] = []
    carried: int | None = None
    for i, (start, body, path) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        last = i + 1 == len(marks)
        if text[body:end].strip() or (last and text[start:end].strip()):
            sections.append(_Section(start if carried is None else carried, end, path))
            carried = None
        elif path and not last and carried is None:
            carried = start
    return sections


class _Splitter:
    def __init__(self, text: str, count: Count, max_tokens: int, overlap_tokens: int) -> None:
        self._text = text
        self._count = count
        self._max = max_tokens
        self._overlap = overlap_tokens

    def section(self, section: _Section) -> list[Chunk]:
        pieces = self._pieces(section.start, section.end, 0)
        chunks: list[Chunk] = []
        i, lead = 0, None  # lead: where the overlap with the previous chunk begins
        while i < len(pieces):
            chunk, i = self._pack(pieces, i, lead, section.headings)
            if chunk is not None:
                chunks.append(chunk)
                lead = self._lead(chunk, pieces[i].tokens) if i < len(pieces) else None
        return chunks

    def _pieces(self, start: int, end: int, level: int) -> list[_Piece]:
        """``[start, end)`` as consecutive pieces of at most ``max_tokens`` each."""
        tokens = self._count(self._text[start:end])
        if tokens <= self._max:
            return [_Piece(start, end, tokens)]
        if level == len(_LEVELS):
            return self._hard_split(start, end)
        cuts = [
            m.start(1)
            for m in _LEVELS[level].finditer(self._text, start, end)
            if start < m.start(1) and m.end(1) < end
        ]
        if not cuts:
            return self._pieces(start, end, level + 1)
        bounds = [start, *cuts, end]
        return [p for a, b in zip(bounds, bounds[1:]) for p in self._pieces(a, b, level + 1)]

    def _hard_split(self, start: int, end: int) -> list[_Piece]:
        """A single word longer than the budget, cut where the longest prefix still fits."""
        pieces: list[_Piece] = []
        while start < end:
            low, high = start + 1, min(end, start + self._max * _MAX_CHARS_PER_TOKEN)
            while low < high:  # the longest prefix [start, cut) that fits
                middle = (low + high + 1) // 2
                if self._count(self._text[start:middle]) <= self._max:
                    low = middle
                else:
                    high = middle - 1
            pieces.append(_Piece(start, low, self._count(self._text[start:low])))
            start = low
        return pieces

    def _pack(
        self, pieces: list[_Piece], i: int, lead: int | None, headings: tuple[str, ...]
    ) -> tuple[Chunk | None, int]:
        """The chunk that starts with ``pieces[i]`` (after the overlap from ``lead``), and the
        index of the first piece it leaves for the next chunk."""
        budget = self._max - (self._count(self._text[lead : pieces[i].start]) if lead is not None else 0)
        j, used = i, 0
        while j < len(pieces) and used + pieces[j].tokens <= budget:
            used += pieces[j].tokens
            j += 1
        j = max(j, i + 1)
        while True:
            chunk = self._chunk(pieces[i].start if lead is None else lead, pieces[j - 1].end, headings)
            if chunk is None or chunk.tokens <= self._max:
                return chunk, j
            if j > i + 1:
                j -= 1  # BPE merges made the whole longer than its parts: give back a piece
            elif lead is not None:
                lead = None
            else:  # a piece alone always fits; kept as a guard against a counter that does not add up
                return chunk, j

    def _chunk(self, start: int, end: int, headings: tuple[str, ...]) -> Chunk | None:
        span = self._text[start:end]
        trimmed = span.strip()
        if not trimmed:
            return None
        start += len(span) - len(span.lstrip())
        return Chunk(start, start + len(trimmed), trimmed, self._count(trimmed), headings)

    def _lead(self, previous: Chunk, next_tokens: int) -> int | None:
        """Where the next chunk starts: the first word of the longest end of ``previous`` that
        fits the overlap (and leaves room for the next piece); None for no overlap."""
        budget = min(self._overlap, self._max - next_tokens)
        if budget <= 0:
            return None
        starts = [m.start() for m in _WORD_START.finditer(self._text, previous.start + 1, previous.end)]
        low, high = 0, len(starts)  # the first start whose suffix fits; len(starts): none fits
        while low < high:
            middle = (low + high) // 2
            if self._count(self._text[starts[middle] : previous.end]) <= budget:
                high = middle
            else:
                low = middle + 1
        return starts[low] if low < len(starts) else None
