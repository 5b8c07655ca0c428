"""The no-LLM digest: sentences, key phrases, entities, and an extractive ``Summarizer``.

Everything here is pure, deterministic Python over ``service.embedding.text`` (its word
splitter, stopwords and Porter stemmer). Summaries are extractive: whole sentences are copied
from the turns, so names, numbers and dates survive verbatim; nothing is rewritten.

Key phrases follow RAKE (Rose et al., "Automatic keyword extraction from individual documents",
2010): candidates are runs of content words between stopwords and punctuation, each word scored
by degree / frequency. One heuristic replaces a part-of-speech tagger: the first content word
after a subject pronoun ("I *love* alpine lakes", "we *visited* Bern") is taken as a verb and
breaks the phrase.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from service.digest.model import Digest, Turn
from service.embedding.text import STOPWORDS, stem, term_set, tokenize, words
from service.storage.ports import TokenCounter

__all__ = ["ExtractiveSummarizer", "entities", "keyphrases", "sentences", "split_sentences"]

# --- sentences ----------------------------------------------------------------------------

# A sentence ends at ., ! or ? (closing quotes and brackets included) before a space or the
# end, and at every line break (chat messages use them as sentence ends).
_BREAK = re.compile(r"[.!?]+[\"'\u2019\u201d)\]]*(?=\s|$)|\n")
_LOOKBEHIND = 16  # characters before a period searched for the word it ends
# Abbreviations that a period does not end a sentence after. Letters joined by periods
# ("e.g.", "U.S.") and single capital initials ("J. Smith") are recognised without a list.
_DOTTED = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st mt vs approx".split())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, stripped; pieces without a letter or digit are dropped."""
    return list(split_sentences(text))


# Sentences come back again and again (a rolling summary's at every fold, a turn's in every step
# of its digest, a memory's in every context), so what is found in a text or sentence is cached.
_CACHED_SENTENCES = 16384


@lru_cache(maxsize=_CACHED_SENTENCES)
def split_sentences(text: str) -> tuple[str, ...]:
    """``sentences`` as a tuple (cached)."""
    found: list[str] = []
    start = 0
    for mark in _BREAK.finditer(text):
        if not _after_abbreviation(text, mark):
            _keep(found, text[start : mark.end()])
            start = mark.end()
    _keep(found, text[start:])
    return tuple(found)


def _after_abbreviation(text: str, mark: re.Match[str]) -> bool:
    if mark.group() != ".":
        return False
    before = text[max(0, mark.start() - _LOOKBEHIND) : mark.start()].split()
    word = before[-1].lstrip("(\"'\u2018\u201c") if before else ""
    initial = len(word) == 1 and word.isupper() and word != "I"
    return initial or _DOTTED.match(word) is not None or word.lower() in _ABBREVIATIONS


def _keep(found: list[str], piece: str) -> None:
    piece = piece.strip()
    if any(ch.isalnum() for ch in piece):
        found.append(piece)


# --- words of a sentence ------------------------------------------------------------------

# Numbers (with separators, a currency sign or an ordinal suffix), words (inner apostrophes and
# hyphens kept), or one punctuation character.
_TOKEN = re.compile(
    r"[$€£¥₹]?\d+(?:[.,:/-]\d+)*(?:st|nd|rd|th)?(?![^\W_])"
    r"|[^\W_]+(?:['\u2019-][^\W_]+)*"
    r"|[^\w\s]"
)
# Subject pronouns (as ``words`` spells them) whose next content word is taken as a verb.
_SUBJECTS = frozenset("i im ive id ill we weve wed you youre youve youd they theyre he she it".split())


@dataclass(frozen=True, slots=True)
class _Word:
    surface: str
    start: int
    end: int
    norm: str  # lowercase, possessive and apostrophes dropped ("" for punctuation)
    initial: bool  # the first word of its sentence

    @property
    def stop(self) -> bool:
        return self.norm in STOPWORDS or (len(self.norm) < 2 and not self.norm.isdigit())

    @property
    def number(self) -> bool:
        return any(ch.isdigit() for ch in self.surface)

    @property
    def named(self) -> bool:
        """Capitalised where a sentence does not start: a name or another proper noun."""
        return self.surface[0].isupper() and not self.initial and not self.stop

    @property
    def key(self) -> str:
        return stem(self.norm)


@lru_cache(maxsize=65536)
def _normal(surface: str) -> str:
    """A token as ``words`` spells it, joined ("" for punctuation; cached: chat vocabularies are small)."""
    return "".join(words(surface))


def _scan(sentence: str) -> list[_Word | None]:
    """The tokens of one sentence; None stands for punctuation."""
    tokens: list[_Word | None] = []
    first = True
    for match in _TOKEN.finditer(sentence):
        norm = _normal(match.group())
        if not norm:
            tokens.append(None)
            continue
        tokens.append(_Word(match.group(), match.start(), match.end(), norm, first))
        first = False
    return tokens


# --- key phrases --------------------------------------------------------------------------

_MAX_PHRASE_WORDS = 3
_REPEAT_BONUS = 0.5  # per repeat of a word, so that what a chat keeps coming back to ranks up
_NAME_BONUS = 1.0
_NUMBER_BONUS = 1.0


@lru_cache(maxsize=_CACHED_SENTENCES)
def _phrases(sentence: str) -> tuple[tuple[_Word, ...], ...]:
    """Candidate phrases: runs of content words, split at stopwords, punctuation and verbs."""
    phrases: list[tuple[_Word, ...]] = []
    run: list[_Word] = []
    after_subject = False
    for word in _scan(sentence):
        verb = after_subject and word is not None and not word.stop
        if word is None or word.stop or verb or word.norm in _SUBJECTS:
            _flush(phrases, run)
            run = []
        else:
            run.append(word)
        if word is None or verb or word.norm in _SUBJECTS:
            after_subject = word is not None and word.norm in _SUBJECTS
    _flush(phrases, run)
    return tuple(phrases)


def _flush(phrases: list[tuple[_Word, ...]], run: list[_Word]) -> None:
    for start in range(0, len(run), _MAX_PHRASE_WORDS):
        phrases.append(tuple(run[start : start + _MAX_PHRASE_WORDS]))


def _word_scores(phrases: Iterable[Sequence[_Word]]) -> dict[str, float]:
    """RAKE's degree / frequency per stem, plus a little for every repeat."""
    frequency: Counter[str] = Counter()
    degree: Counter[str] = Counter()
    for phrase in phrases:
        for word in phrase:
            frequency[word.key] += 1
            degree[word.key] += len(phrase)
    return {key: degree[key] / n + _REPEAT_BONUS * (n - 1) for key, n in frequency.items()}


def _phrase_score(phrase: Sequence[_Word], scores: dict[str, float]) -> float:
    bonus = sum(_NAME_BONUS * w.named + _NUMBER_BONUS * w.number for w in phrase)
    return sum(scores[w.key] for w in phrase) + bonus


def keyphrases(text: str, limit: int = 8) -> list[str]:
    """Up to ``limit`` key phrases of ``text`` (at most three words each), best first.

    Original spelling; one phrase per set of stems (its first spelling); ties keep the order of
    first appearance.
    """
    if limit <= 0:
        return []
    phrases = [phrase for sentence in split_sentences(text) for phrase in _phrases(sentence)]
    scores = _word_scores(phrases)
    best: dict[frozenset[str], tuple[float, int, str]] = {}
    for position, phrase in enumerate(phrases):
        stems = frozenset(w.key for w in phrase)
        if stems not in best:
            best[stems] = (-_phrase_score(phrase, scores), position, " ".join(w.surface for w in phrase))
    return [surface for _, _, surface in sorted(best.values())[:limit]]


# --- entities -----------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?\b"
_YEAR = r"(?:,?\s+\d{4}\b)?"
_DATE = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
    rf"|\b{_DAY}(?:\s+of)?\s+{_MONTH}{_YEAR}|\b{_MONTH}\s+{_DAY}{_YEAR}"
    rf"|\b{_MONTH}\s+\d{{4}}\b|\b(?:19|20)\d{{2}}\b",
    re.IGNORECASE,
)
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_AMOUNT = re.compile(
    rf"[$€£¥₹]\s?{_NUMBER}(?:\s?(?:[kKmM]|bn|million|billion|thousand)\b)?"
    rf"|\b[A-Z]{{3}}\s?{_NUMBER}\b"
    rf"|\b{_NUMBER}(?:\s?%|\s?(?P<unit>[^\W\d_]+)\b)"
)
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})

_Span = tuple[int, int]


def _names(sentence: str) -> list[_Span]:
    """Runs of capitalised content words; at a sentence start only runs of two or more."""
    spans: list[_Span] = []
    run: list[_Word] = []
    for word in [*_scan(sentence), None]:
        if word is not None and word.surface[0].isupper() and not word.stop and not word.number:
            run.append(word)
            continue
        if run and (len(run) > 1 or not run[0].initial):
            spans.append((run[0].start, run[-1].end))
        run = []
    return spans


def _amounts(sentence: str) -> list[_Span]:
    """Numbers with a currency or a unit ("$300", "20,000 CNY", "5 km", "30%")."""
    spans: list[_Span] = []
    for match in _AMOUNT.finditer(sentence):
        unit = (match.group("unit") or "").lower()
        if unit not in STOPWORDS and unit not in _ORDINAL_SUFFIXES:
            spans.append(match.span())
    return spans


def _dates(sentence: str) -> list[_Span]:
    return [match.span() for match in _DATE.finditer(sentence)]


def _resolve(spans: Iterable[_Span]) -> list[_Span]:
    """Overlapping spans reduced to the earliest, then longest, one."""
    kept: list[_Span] = []
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept


def entities(text: str) -> list[str]:
    """Names, amounts and dates of ``text`` as written, in order of first appearance, no repeats
    (compared case-insensitively)."""
    found: dict[str, str] = {}
    for sentence in split_sentences(text):
        for surface in _sentence_entities(sentence):
            found.setdefault(surface.casefold(), surface)
    return list(found.values())


@lru_cache(maxsize=_CACHED_SENTENCES)
def _sentence_entities(sentence: str) -> tuple[str, ...]:
    return tuple(sentence[start:end] for start, end in _resolve([*_names(sentence), *_amounts(sentence), *_dates(sentence)]))


# --- the summarizer -----------------------------------------------------------------------

_MARK_BONUS = 2.0  # a sentence that holds an entity, a number or a date
_USER_BONUS = 0.5
_DUPLICATE_OVERLAP = 0.7  # Jaccard overlap of stems above which a sentence repeats another
_TOPIC_WORDS = 5
_TOPIC_CHARS = 60
_MAX_KEYWORDS = 12
_LEADING_PHRASES = 6  # key phrases ahead of the entities in ``keywords``
_FIRST_PERSON = frozenset("i im ive id ill me my mine myself".split())
_LINE = re.compile(r"^(?P<speaker>[^:\n]{1,64}): (?P<text>.+)$")


@dataclass(frozen=True, slots=True)
class _Sentence:
    order: int  # chronological position
    speaker: str | None  # None: a summary line without a speaker
    text: str
    stems: tuple[str, ...]  # content stems with repeats
    user: bool
    fresh: bool  # from the new turns (fold), not from the previous summary

    @property
    def marked(self) -> bool:
        return _marked(self.text)


@lru_cache(maxsize=_CACHED_SENTENCES)
def _marked(text: str) -> bool:
    """Whether a sentence holds a number, a name, an amount or a date."""
    return any(ch.isdigit() for ch in text) or bool(entities(text))


@lru_cache(maxsize=_CACHED_SENTENCES)
def _stems(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def _from_turns(turns: Sequence[Turn], first: int = 0) -> list[_Sentence]:
    found: list[_Sentence] = []
    for turn in turns:
        speaker = turn.speaker or turn.role
        for text in split_sentences(turn.content):
            found.append(_Sentence(first + len(found), speaker, text, _stems(text), turn.role == "user", True))
    return found


def _from_summary(summary: str) -> list[_Sentence]:
    """The lines of a previous summary, back as sentences with their speakers."""
    found: list[_Sentence] = []
    for line in summary.splitlines():
        parsed = _LINE.match(line.strip())
        speaker, body = (parsed["speaker"], parsed["text"]) if parsed else (None, line)
        for text in split_sentences(body):
            found.append(_Sentence(len(found), speaker, text, _stems(text), False, False))
    return found


def _scores(candidates: Sequence[_Sentence]) -> dict[int, float]:
    """Salience per sentence order: the frequencies of its distinct stems across all
    candidates, plus the entity and user bonuses."""
    frequency = Counter(s for candidate in candidates for s in candidate.stems)
    return {
        c.order: sum(frequency[s] for s in set(c.stems)) + _MARK_BONUS * c.marked + _USER_BONUS * c.user
        for c in candidates
    }


def _repeats(candidate: _Sentence, chosen: Iterable[_Sentence]) -> bool:
    mine, folded = term_set(candidate.text), candidate.text.casefold()
    for other in chosen:
        theirs = term_set(other.text)
        if folded == other.text.casefold():
            return True
        if mine and len(mine & theirs) / len(mine | theirs) >= _DUPLICATE_OVERLAP:
            return True
    return False


def _render(chosen: Sequence[_Sentence]) -> str:
    """``speaker: sentence`` lines in order; a speaker's consecutive sentences share a line
    (a period is put between two where the first has no end mark of its own)."""
    lines: list[str] = []
    previous: _Sentence | None = None
    for sentence in chosen:
        if previous is not None and sentence.speaker is not None and sentence.speaker == previous.speaker:
            lines[-1] += _separator(lines[-1]) + sentence.text
        elif sentence.speaker is None:
            lines.append(sentence.text)
        else:
            lines.append(f"{sentence.speaker}: {sentence.text}")
        previous = sentence
    return "\n".join(lines)


def _separator(line: str) -> str:
    """What joins two sentences on one line: a period where the first has no end mark."""
    return " " if line.rstrip("\"'\u2019\u201d)]").endswith((".", "!", "?")) else ". "


def _select(
    candidates: Sequence[_Sentence],
    rank: Callable[[_Sentence], tuple[object, ...]],
    tokens: TokenCounter,
    max_tokens: int,
) -> list[_Sentence]:
    """Sentences taken greedily in ``rank`` order while the rendered text fits ``max_tokens``,
    returned in chronological order. Repeats and new sentences that do not fit are skipped; the
    first old sentence (from a previous summary) that does not fit ends the selection, so old
    sentences drop out strictly from the least salient up."""
    chosen: list[_Sentence] = []
    for candidate in sorted((c for c in candidates if c.stems), key=rank):
        if _repeats(candidate, chosen):
            continue
        trial = sorted([*chosen, candidate], key=lambda s: s.order)
        if tokens.count(_render(trial)) <= max_tokens:
            chosen = trial
        elif not candidate.fresh:
            break
    return chosen


def _topic(ranked: Sequence[str]) -> str:
    """A lowercase label: the best key phrase without digits, and the next one that shares no
    stem with it when both fit in five words and 60 characters."""
    phrases = [p.lower() for p in ranked if not any(ch.isdigit() for ch in p)]
    if not phrases:
        return ""
    label, stems = phrases[0], set(tokenize(phrases[0]))
    for phrase in phrases[1:]:
        if not stems.intersection(tokenize(phrase)):
            longer = f"{label} {phrase}"
            fits = len(longer.split()) <= _TOPIC_WORDS and len(longer) <= _TOPIC_CHARS
            return longer if fits else label[:_TOPIC_CHARS]
    return label[:_TOPIC_CHARS]


def _keywords(phrases: Sequence[str], found: Sequence[str]) -> list[str]:
    """The best key phrases, then the entities, then the other key phrases; no case-insensitive repeats."""
    merged: dict[str, str] = {}
    for term in [*phrases[:_LEADING_PHRASES], *found, *phrases[_LEADING_PHRASES:]]:
        merged.setdefault(term.casefold(), term)
    return list(merged.values())[:_MAX_KEYWORDS]


def _importance(turns: Sequence[Turn], found: Sequence[str]) -> float:
    """0.3 to 0.9: entities and the user's first-person statements per turn (two per turn: 0.9)."""
    statements = sum(
        1
        for turn in turns
        if turn.role == "user"
        for sentence in split_sentences(turn.content)
        if _FIRST_PERSON.intersection(words(sentence))
    )
    density = (len(found) + statements) / max(1, len(turns))
    return round(0.3 + 0.6 * min(1.0, density / 2), 3)


class ExtractiveSummarizer:
    """A ``Summarizer`` that copies the most salient sentences, within a token budget."""

    def __init__(self, tokens: TokenCounter) -> None:
        self._tokens = tokens

    async def condense(self, turns: Sequence[Turn], max_tokens: int) -> Digest:
        candidates = _from_turns(turns)
        scores = _scores(candidates)
        chosen = _select(candidates, lambda s: (-scores[s.order], s.order), self._tokens, max_tokens)
        whole = "\n".join(turn.content for turn in turns)
        found, phrases = entities(whole), keyphrases(whole, limit=_MAX_KEYWORDS)
        return Digest(_render(chosen), _topic(phrases), _keywords(phrases, found), _importance(turns, found))

    async def fold(self, previous: str, turns: Sequence[Turn], max_tokens: int) -> str:
        """New sentences go first, by salience; the previous summary's sentences fill what is
        left, most salient first, so when the budget is full the least salient old ones drop out."""
        old = _from_summary(previous)
        candidates = [*old, *_from_turns(turns, first=len(old))]
        scores = _scores(candidates)
        chosen = _select(candidates, lambda s: (not s.fresh, -scores[s.order], s.order), self._tokens, max_tokens)
        return _render(chosen)
