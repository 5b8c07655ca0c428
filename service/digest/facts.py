"""The no-LLM ``FactExtractor``: first-person patterns in the user's messages, and a
deterministic reconciliation with the memories the user already has.

Each user sentence that is not a question is cut into clauses (at ", and", ", but", " but ",
" because ", ";" and at " and I" / " and my"); in each clause the earliest matching pattern
gives at most one fact. A negation ("I do not like", "I'm not allergic to") flips a preference
to its opposite and drops every other fact, so a negated clause never yields the fact it denies.

Predicates of "My <noun phrase> is X": the noun phrase's words in order, stopwords (articles,
prepositions, ...) dropped, the first three kept, joined by underscores, then "_is":
"My budget for the trip is 20,000 CNY" gives ``budget_trip_is``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from service.digest.extractive import sentences
from service.digest.model import Fact, FactDecision, KnownMemory, Turn
from service.embedding.text import STOPWORDS, words

__all__ = ["SINGLE_VALUED", "RuleFactExtractor", "single_valued"]

#: Predicates a subject has one value of (besides every "*_is"): a new value replaces the old.
SINGLE_VALUED = frozenset({"name_is", "age_is", "lives_in", "works_as", "works_at"})
_PREFERENCES = frozenset({"likes", "dislikes"})
_KEY_PREDICATES = frozenset({"allergic_to", "name_is"})
_MONEY_WORDS = frozenset({"budget", "price", "cost", "salary", "rent", "income"})
_MONEY = re.compile(r"[$€£¥₹]\s?\d|\d\s?(?:[A-Z]{3})\b")
_IMPORTANCE, _KEY_IMPORTANCE = 0.6, 0.8
_MAX_OBJECT_WORDS = 8


def single_valued(predicate: str) -> bool:
    return predicate in SINGLE_VALUED or predicate.endswith("_is")


# --- patterns -----------------------------------------------------------------------------

_I = r"\bi\s+"
_IM = r"\b(?:i'?m|i\s+am)\s+"
_ADV = r"(?:(?:really|also|absolutely|just|truly|totally|still|actually|kind\s+of|sort\s+of)\s+)*"
_NEG = r"(?P<neg>(?:(?:do|does|did)\s+not|(?:do|does|did)n'?t|not|never|no\s+longer)\s+)?"
_OBJ = r"(?P<obj>.+)"
_BE = rf"{_ADV}{_NEG}{_ADV}"  # between the subject and the verb

_CLAUSE = re.compile(
    r",\s*(?:and|but)\s+|\s+(?:but|because)\s+|\s*;\s*|\s+and\s+(?=(?:i|i['\u2019]m|i['\u2019]d|my)\b)",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"^\W*(?:do|does|did|am|are|is|can|could|would|should|will|have|has)\s+(?:i|my)\b", re.I)
_HEDGE = re.compile(r"\b(?:if|whether|unless)\s+$", re.IGNORECASE)


def _compile(pattern: str) -> re.Pattern[str]:
    """Case-insensitive, with a typographic apostrophe wherever a straight one is written
    (inside a character class, write ``\\x27`` instead)."""
    return re.compile(pattern.replace("'", "['\u2019]"), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    predicate: str  # "{np}" stands for the noun phrase's slug
    template: str  # the content sentence; fields are the pattern's groups, ``obj`` cleaned
    negated: tuple[str, str] | None = None  # (predicate, template) when "not" flips the fact
    max_words: int = _MAX_OBJECT_WORDS
    capitalised: bool = False  # the object is the run of capitalised words it starts with


def _rule(
    pattern: str,
    predicate: str,
    template: str,
    negated: tuple[str, str] | None = None,
    max_words: int = _MAX_OBJECT_WORDS,
    capitalised: bool = False,
) -> _Rule:
    return _Rule(_compile(pattern), predicate, template, negated, max_words, capitalised)


_DISLIKES = ("dislikes", "User dislikes {obj}.")
# Order breaks ties between patterns that match at the same place ("My name is" before "My X is").
_RULES = (
    _rule(rf"{_I}{_BE}(?:love|like|enjoy|adore)\s+{_OBJ}", "likes", "User likes {obj}.", negated=_DISLIKES),
    _rule(rf"{_I}{_BE}(?:hate|dislike|detest|can'?t\s+stand|cannot\s+stand)\s+{_OBJ}", *_DISLIKES),
    _rule(rf"{_IM}{_BE}allergic\s+to\s+{_OBJ}", "allergic_to", "User is allergic to {obj}."),
    _rule(rf"{_I}{_BE}(?:live|reside)\s+in\s+{_OBJ}", "lives_in", "User lives in {obj}."),
    _rule(rf"{_I}(?:have\s+)?{_BE}(?:moved|relocated)\s+to\s+{_OBJ}", "lives_in", "User lives in {obj}."),
    _rule(rf"\b(?:i'?m|i\s+am|i)\s+{_BE}work(?:ing)?\s+as\s+(?P<art>an?\s+)?{_OBJ}", "works_as", "User works as {art}{obj}."),
    _rule(rf"\b(?:i'?m|i\s+am|i)\s+{_BE}work(?:ing)?\s+(?:at|for)\s+{_OBJ}", "works_at", "User works at {obj}."),
    _rule(rf"\bmy\s+name\s+is\s+{_NEG}{_OBJ}", "name_is", "User's name is {obj}.", max_words=4),
    _rule(rf"\b{_NEG}call\s+me\s+{_OBJ}", "name_is", "User's name is {obj}.", max_words=4, capitalised=True),
    _rule(rf"{_IM}{_NEG}(?P<obj>\d{{1,3}})\s*(?:years?|yrs?)\s+old\b", "age_is", "User is {obj} years old."),
    _rule(rf"{_IM}{_BE}(?:worried|concerned|anxious|nervous)\s+about\s+{_OBJ}", "worried_about", "User is worried about {obj}."),
    _rule(rf"{_I}{_BE}want\s+{_OBJ}", "wants", "User wants {obj}."),
    _rule(rf"\bi(?:'d|\s+would)\s+{_BE}(?:like|love)\s+{_OBJ}", "wants", "User wants {obj}."),
    _rule(
        rf"\bmy\s+(?P<np>[^\W\d_][\w\x27\u2019-]*(?:\s+[\w\x27\u2019-]+){{0,5}}?)\s+(?P<verb>is|are|was)\s+{_NEG}{_OBJ}",
        "{np}_is",
        "User's {np} {verb} {obj}.",
    ),
)


# --- extraction ---------------------------------------------------------------------------


def _slug(phrase: str) -> str:
    """A noun phrase as a predicate stem: its non-stopwords, the first three, underscored."""
    return "_".join([w for w in words(phrase) if w not in STOPWORDS][:3])


def _clean(value: str, rule: _Rule) -> str | None:
    """The object: at most ``max_words`` words, trailing punctuation dropped; None when it holds
    no content word ("I like it")."""
    parts = value.split()
    if rule.capitalised:
        parts = parts[: next((i for i, p in enumerate(parts) if not p[:1].isupper()), len(parts))]
    cleaned = " ".join(parts[: rule.max_words]).rstrip(".!?,;:\"')\u2019\u201d")
    if not any(w not in STOPWORDS for w in words(cleaned)):
        return None
    return cleaned


def _importance(predicate: str, value: str) -> float:
    key = predicate in _KEY_PREDICATES or _MONEY_WORDS.intersection(predicate.split("_"))
    return _KEY_IMPORTANCE if key or _MONEY.search(value) else _IMPORTANCE


def _fact(rule: _Rule, match: re.Match[str], source_id: str) -> Fact | None:
    fields = {name: value or "" for name, value in match.groupdict().items()}
    negated = bool(fields.get("neg"))
    if (negated and rule.negated is None) or _HEDGE.search(match.string[: match.start()]):
        return None
    value = _clean(fields["obj"], rule)
    predicate, template = rule.negated if negated and rule.negated else (rule.predicate, rule.template)
    predicate = predicate.format(np=_slug(fields.get("np", "")))
    if value is None or predicate.startswith("_"):
        return None
    content = template.format(**{**fields, "obj": value})
    return Fact("user", predicate, value, content, source_id, _importance(predicate, value))


def _first_match(clause: str) -> tuple[_Rule, re.Match[str]] | None:
    """The pattern that matches earliest in the clause (the first listed on a tie)."""
    best: tuple[int, int, _Rule, re.Match[str]] | None = None
    for index, rule in enumerate(_RULES):
        match = rule.pattern.search(clause)
        if match is not None and (best is None or (match.start(), index) < best[:2]):
            best = (match.start(), index, rule, match)
    return None if best is None else (best[2], best[3])


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?") or _QUESTION.search(sentence) is not None


def _facts_of(turn: Turn) -> Iterator[Fact]:
    for sentence in sentences(turn.content):
        if _is_question(sentence):
            continue
        for clause in _CLAUSE.split(sentence):
            found = _first_match(clause)
            fact = _fact(*found, turn.id) if found else None
            if fact is not None:
                yield fact


# --- reconciliation -----------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".!?")


def _structured(memory: KnownMemory) -> bool:
    return memory.subject is not None and memory.predicate is not None and memory.object is not None


def _same_subject(fact: Fact, memory: KnownMemory) -> bool:
    return _structured(memory) and _fold(memory.subject or "") == _fold(fact.subject)


def _same(fact: Fact, memory: KnownMemory) -> bool:
    """The memory already says this: the same triple, or (unstructured) the same content."""
    if _fold(memory.content) == _fold(fact.content):
        return True
    return _same_subject(fact, memory) and memory.predicate == fact.predicate and _fold(memory.object or "") == _fold(fact.object)


def _replaced(fact: Fact, memory: KnownMemory) -> bool:
    """A single-valued predicate with another value: the new value replaces it."""
    return single_valued(fact.predicate) and _same_subject(fact, memory) and memory.predicate == fact.predicate


def _flipped(fact: Fact, memory: KnownMemory) -> bool:
    """Likes X where the memory says dislikes X, or the other way round."""
    opposite = {fact.predicate, memory.predicate} == _PREFERENCES
    return opposite and _same_subject(fact, memory) and _fold(memory.object or "") == _fold(fact.object)


_CHECKS: tuple[tuple[Literal["none", "update"], Callable[[Fact, KnownMemory], bool]], ...] = (
    ("none", _same),
    ("update", _replaced),
    ("update", _flipped),
)


class RuleFactExtractor:
    """A ``FactExtractor`` from first-person patterns; no model, no I/O."""

    async def extract(self, turns: Sequence[Turn]) -> list[Fact]:
        """Facts from the user's turns in order of appearance; a repeated triple is kept once."""
        found: dict[tuple[str, str, str], Fact] = {}
        for turn in turns:
            if turn.role != "user":
                continue
            for fact in _facts_of(turn):
                found.setdefault((fact.subject, fact.predicate, _fold(fact.object)), fact)
        return list(found.values())

    async def decide(self, fact: Fact, similar: Sequence[KnownMemory]) -> FactDecision:
        """"none" when a memory already says it; "update" of a memory it replaces (another value
        of a single-valued predicate) or flips (likes / dislikes the same thing); else "add"."""
        for op, applies in _CHECKS:
            for memory in similar:
                if applies(fact, memory):
                    return FactDecision(op, fact, memory.id)
        return FactDecision("add", fact)
