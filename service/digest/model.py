"""What the digest (summaries, condensation, fact extraction) reads and writes, and its two ports.

The default implementations need no LLM (``service.digest.extractive``, ``service.digest.facts``);
``service.llm`` offers LLM-backed ones that fall back to them. Everything here is plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["Digest", "Fact", "FactDecision", "FactExtractor", "KnownMemory", "Summarizer", "Turn"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One message as the digest sees it."""

    id: str
    role: str  # user | assistant | system | tool
    speaker: str  # the name when the message has one, else the role
    content: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Digest:
    """An extractive (or LLM) condensation of some turns.

    ``text`` is what a prompt shows; ``topic`` a short label ("trip to zurich"); ``keywords``
    the salient words and phrases (entities, numbers and dates included) in their original
    spelling; ``importance`` in [0, 1].
    """

    text: str
    topic: str
    keywords: list[str] = field(default_factory=list)
    importance: float = 0.5


class Summarizer(Protocol):
    """Condenses turns. Both methods must stay within ``max_tokens`` of the service's tokenizer."""

    async def fold(self, previous: str, turns: Sequence[Turn], max_tokens: int) -> str:
        """The rolling summary: ``previous`` (may be "") updated with ``turns`` that just left the buffer."""
        ...

    async def condense(self, turns: Sequence[Turn], max_tokens: int) -> Digest:
        """One summary memory for a run of turns."""
        ...


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact about a subject, as a structured triple and as a sentence to store.

    ``subject`` is "user" for the person the chatbot talks to; ``predicate`` a lowercase verb
    phrase with underscores ("likes", "dislikes", "lives_in", "works_as", "name_is",
    "budget_is", "allergic_to", ...); ``object`` the value as written; ``content`` a
    self-contained sentence ("User likes coffee."); ``source_id`` the message it came from.
    """

    subject: str
    predicate: str
    object: str
    content: str
    source_id: str
    importance: float = 0.6


@dataclass(frozen=True, slots=True)
class KnownMemory:
    """A memory the user already has that a new fact may touch."""

    id: str
    content: str
    subject: str | None = None
    predicate: str | None = None
    object: str | None = None


@dataclass(frozen=True, slots=True)
class FactDecision:
    """What to do with one new fact: add it, update memory ``target_id`` with it, delete
    ``target_id`` (the fact contradicts it and carries nothing to keep), or nothing."""

    op: Literal["add", "update", "delete", "none"]
    fact: Fact
    target_id: str | None = None


class FactExtractor(Protocol):
    async def extract(self, turns: Sequence[Turn]) -> list[Fact]:
        """Facts stated in ``turns`` (the user's own statements first of all)."""
        ...

    async def decide(self, fact: Fact, similar: Sequence[KnownMemory]) -> FactDecision:
        """Reconcile one new fact with the user's most similar memories."""
        ...
