"""LLM-backed ``Summarizer`` and ``FactExtractor`` that fall back to the no-LLM ones.

Each method makes at most one LLM call and asks for a JSON object. The reply is checked field by
field (pydantic, strict types) before it is used; a failed call or a reply that does not pass is
counted by the ``ChatClient`` (outcome error, timeout or invalid, once per call) and the fallback
answers instead. When there is nothing for a model to do (no turns, no similar memories) the
fallback answers without a call. Nothing but ``asyncio.CancelledError`` (or the fallback's own
errors) reaches the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.digest.model import Digest, Fact, FactDecision, FactExtractor, KnownMemory, Summarizer, Turn
from service.llm.client import ChatClient, LlmError
from service.storage.ports import TokenCounter

__all__ = ["LlmFactExtractor", "LlmSummarizer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Room for the JSON around a summary, and for a digest's topic and keywords, in output tokens.
_FOLD_OVERHEAD_TOKENS = 64
_CONDENSE_OVERHEAD_TOKENS = 256
_EXTRACT_MAX_TOKENS = 1024
_DECIDE_MAX_TOKENS = 64

FOLD_PROMPT = """\
You maintain the running summary of a conversation between a user and an assistant.
Update the current summary with the new messages. Keep facts, names, numbers, dates, decisions
and open questions; drop small talk. Write plain prose in the third person, at most {max_tokens}
tokens. Answer with a JSON object only: {{"summary": "<the updated summary>"}}"""

CONDENSE_PROMPT = """\
Condense this run of conversation messages into one memory worth keeping.
Answer with a JSON object only:
{{"summary": "<what happened and what was said, at most {max_tokens} tokens>",
 "topic": "<a short label of two to six words>",
 "keywords": ["<salient words and phrases: names, places, numbers, dates, as written>"],
 "importance": <a number from 0 (trivial) to 1 (essential to remember)>}}"""

EXTRACT_PROMPT = """\
Extract the facts worth remembering from these conversation messages, above all what the user
says about themselves: preferences, personal details, plans, relationships, constraints.
Each message starts with its id in square brackets. Do not invent facts.
Answer with a JSON object only:
{"facts": [{"subject": "<user for the person the assistant talks to, else the name>",
  "predicate": "<a lowercase verb phrase with underscores: likes, dislikes, lives_in, works_as,
  name_is, budget_is, allergic_to, ...>",
  "object": "<the value as written>",
  "content": "<a self-contained sentence, such as: User likes coffee.>",
  "source_id": "<the id of the message the fact comes from>"}]}
Answer {"facts": []} when there is nothing worth keeping."""

DECIDE_PROMPT = """\
You keep a user's memories consistent. Compare the new fact with the existing memories and
choose one operation:
- add: the fact is new information;
- update: the fact refines or changes memory target_id, and replaces it;
- delete: the fact contradicts memory target_id and carries nothing worth keeping;
- none: the memories already say this.
Answer with a JSON object only:
{"op": "add" | "update" | "delete" | "none", "target_id": "<the memory's id for update or delete, else null>"}"""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Importance = Annotated[float, Field(allow_inf_nan=False)]


class _Reply(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class _FoldReply(_Reply):
    summary: Text


class _CondenseReply(_Reply):
    summary: Text
    topic: Text
    keywords: list[str]
    importance: Importance


class _FactReply(_Reply):
    subject: Text
    predicate: Text
    object: Text
    content: Text
    source_id: Any = None


class _FactsReply(_Reply):
    facts: list[_FactReply]


class _DecisionReply(_Reply):
    op: Literal["add", "update", "delete", "none"]
    target_id: str | int | None = None


class LlmSummarizer(Summarizer):
    """Summaries written by an LLM, within the token budget, else by ``fallback``."""

    def __init__(self, client: ChatClient, fallback: Summarizer, tokens: TokenCounter) -> None:
        self._client = client
        self._fallback = fallback
        self._tokens = tokens

    async def fold(self, previous: str, turns: Sequence[Turn], max_tokens: int) -> str:
        fallback = partial(self._fallback.fold, previous, turns, max_tokens)
        if not turns:
            return await fallback()
        return await _or_fallback("fold", self._fold(previous, turns, max_tokens), fallback)

    async def condense(self, turns: Sequence[Turn], max_tokens: int) -> Digest:
        fallback = partial(self._fallback.condense, turns, max_tokens)
        if not turns:
            return await fallback()
        return await _or_fallback("condense", self._condense(turns, max_tokens), fallback)

    async def _fold(self, previous: str, turns: Sequence[Turn], max_tokens: int) -> str:
        user = f"Current summary:\n{previous or '(none yet)'}\n\nNew messages:\n{_transcript(turns)}"
        messages = _messages(FOLD_PROMPT.format(max_tokens=max_tokens), user)

        def parse(found: dict[str, Any]) -> str:
            return self._within(_FoldReply.model_validate(found).summary, max_tokens)

        return await self._client.complete_json(
            messages, max_tokens=max_tokens + _FOLD_OVERHEAD_TOKENS, parse=parse
        )

    async def _condense(self, turns: Sequence[Turn], max_tokens: int) -> Digest:
        messages = _messages(CONDENSE_PROMPT.format(max_tokens=max_tokens), f"Messages:\n{_transcript(turns)}")

        def parse(found: dict[str, Any]) -> Digest:
            reply = _CondenseReply.model_validate(found)
            return Digest(
                text=self._within(reply.summary, max_tokens),
                topic=reply.topic,
                keywords=_distinct(reply.keywords),
                importance=_clamped(reply.importance),
            )

        return await self._client.complete_json(
            messages, max_tokens=max_tokens + _CONDENSE_OVERHEAD_TOKENS, parse=parse
        )

    def _within(self, summary: str, max_tokens: int) -> str:
        used = self._tokens.count(summary)
        if used > max_tokens:
            raise ValueError(f"summary has {used} tokens, over the budget of {max_tokens}")
        return summary


class LlmFactExtractor(FactExtractor):
    """Facts and reconciliation decisions from an LLM, else from ``fallback``."""

    def __init__(self, client: ChatClient, fallback: FactExtractor) -> None:
        self._client = client
        self._fallback = fallback

    async def extract(self, turns: Sequence[Turn]) -> list[Fact]:
        fallback = partial(self._fallback.extract, turns)
        if not turns:
            return await fallback()
        return await _or_fallback("extract", self._extract(turns), fallback)

    async def decide(self, fact: Fact, similar: Sequence[KnownMemory]) -> FactDecision:
        fallback = partial(self._fallback.decide, fact, similar)
        if not similar:
            return await fallback()
        return await _or_fallback("decide", self._decide(fact, similar), fallback)

    async def _extract(self, turns: Sequence[Turn]) -> list[Fact]:
        messages = _messages(EXTRACT_PROMPT, f"Messages:\n{_transcript(turns, with_ids=True)}")
        ids = [turn.id for turn in turns]

        def parse(found: dict[str, Any]) -> list[Fact]:
            return [_fact(reply, ids) for reply in _FactsReply.model_validate(found).facts]

        return await self._client.complete_json(messages, max_tokens=_EXTRACT_MAX_TOKENS, parse=parse)

    async def _decide(self, fact: Fact, similar: Sequence[KnownMemory]) -> FactDecision:
        # mem0's trick: the model sees short numbers, not UUIDs it could misspell.
        numbered = {str(number): memory for number, memory in enumerate(similar, start=1)}
        shown = [{"id": number, "text": memory.content} for number, memory in numbered.items()]
        user = json.dumps({"new_fact": fact.content, "memories": shown}, ensure_ascii=False)

        def parse(found: dict[str, Any]) -> FactDecision:
            return _decision(_DecisionReply.model_validate(found), fact, numbered)

        return await self._client.complete_json(
            _messages(DECIDE_PROMPT, user), max_tokens=_DECIDE_MAX_TOKENS, parse=parse
        )


async def _or_fallback(task: str, attempt: Awaitable[T], fallback: Callable[[], Awaitable[T]]) -> T:
    """``attempt``'s answer, or ``fallback``'s when the LLM gave nothing usable."""
    try:
        return await attempt
    except LlmError as exc:
        log.warning("LLM %s failed (%s: %s); the no-LLM path answers", task, exc.kind, exc)
        return await fallback()


def _messages(system: str, user: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _transcript(turns: Sequence[Turn], *, with_ids: bool = False) -> str:
    """One line per turn: ``[id] 2024-05-01 10:00 Ada (user): content``."""
    return "\n".join(_line(turn, with_ids) for turn in turns)


def _line(turn: Turn, with_id: bool) -> str:
    who = turn.speaker if turn.speaker == turn.role else f"{turn.speaker} ({turn.role})"
    prefix = f"[{turn.id}] " if with_id else ""
    return f"{prefix}{turn.at:%Y-%m-%d %H:%M} {who}: {turn.content}"


def _fact(reply: _FactReply, ids: Sequence[str]) -> Fact:
    """A checked fact; a source id that names none of the turns becomes the first turn's."""
    source = str(reply.source_id) if reply.source_id is not None else ""
    return Fact(
        subject=reply.subject,
        predicate=reply.predicate.lower().replace(" ", "_"),
        object=reply.object,
        content=reply.content,
        source_id=source if source in ids else ids[0],
    )


def _decision(reply: _DecisionReply, fact: Fact, numbered: dict[str, KnownMemory]) -> FactDecision:
    """The decision with the model's memory number mapped back to the memory's id."""
    if reply.op in ("add", "none"):
        return FactDecision(op=reply.op, fact=fact)
    target = numbered.get(str(reply.target_id).strip()) if reply.target_id is not None else None
    if target is None:
        raise ValueError(f"{reply.op} names no memory among the {len(numbered)} given")
    return FactDecision(op=reply.op, fact=fact, target_id=target.id)


def _distinct(words: Sequence[str]) -> list[str]:
    """Non-blank words, stripped, first spelling kept, case-insensitive repeats dropped."""
    seen: set[str] = set()
    kept: list[str] = []
    for word in (w.strip() for w in words):
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            kept.append(word)
    return kept


def _clamped(importance: float) -> float:
    return min(1.0, max(0.0, importance))
