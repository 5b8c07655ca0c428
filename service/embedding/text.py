"""Shared text analysis for the sparse (BM25) index and for keyword extraction.

``tokenize`` is the one analyser that documents and queries go through: lowercase unicode
words, possessive ``'s`` dropped, English stopwords removed, then a Porter (1980) stemmer.
``term_id`` maps a token to a stable 31-bit id (the sparse vector's index), the same in every
process. ``keywords`` picks the salient words of a memory in their original spelling.

No third-party stemmer is installed, so :class:`PorterStemmer` implements the original
algorithm (M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980) step by
step, without the later "Porter2" changes, so its output matches the paper's examples.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["STOPWORDS", "PorterStemmer", "keywords", "stem", "term_id", "term_set", "tokenize", "words"]

# Words: runs of unicode letters/digits, optionally joined by inner apostrophes (don't, Mel's).
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# A word and, when one follows it (after at most one space), the mark that ends its sentence.
_WORD_AND_END = re.compile(r"([^\W_]+(?:'[^\W_]+)*)(\s?[.!?])?")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

# English stopwords: the NLTK list (which already holds the question words what, when, who,
# where, why, how, which), a few conversational fillers that carry no topic, and contractions
# as ``words`` spells them once the apostrophe is gone. Compared before stemming.
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren as at be because been
    before being below between both but by can couldn d did didn do does doesn doing don down
    during each few for from further had hadn has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just ll m ma me mightn more
    most mustn my myself needn no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan she should shouldn so some such t than that the
    their theirs them themselves then there these they this those through to too under until
    up ve very was wasn we were weren what when where which while who whom why will with won
    wouldn y you your yours yourself yourselves
    also could would might must shall may us let lets get got gets yeah yes yep oh ok okay hey
    hi hello wow um uh hmm lol really thanks thank ever much many one
    im ive id youre youve youd youll weve wed theyre theyve hes shes whats thats theres
    dont doesnt didnt isnt wasnt werent arent cant couldnt wouldnt shouldnt wont havent
    hasnt hadnt
    """.split()
)


class PorterStemmer:
    """The Porter (1980) suffix-stripping stemmer, written step by step after the paper.

    ``stem`` expects a lowercase word. Words of one or two letters are returned unchanged, as
    in the reference implementation.
    """

    _VOWELS = frozenset("aeiou")

    def _is_consonant(self, word: str, i: int) -> bool:
        ch = word[i]
        if ch in self._VOWELS:
            return False
        if ch == "y":
            # y is a consonant at the start or after a vowel, a vowel after a consonant.
            return i == 0 or not self._is_consonant(word, i - 1)
        return True

    def _measure(self, stem: str) -> int:
        """m in [C](VC)^m[V]: the number of vowel-consonant sequences."""
        m = 0
        prev_vowel = False
        for i in range(len(stem)):
            consonant = self._is_consonant(stem, i)
            if consonant and prev_vowel:
                m += 1
            prev_vowel = not consonant
        return m

    def _has_vowel(self, stem: str) -> bool:
        return any(not self._is_consonant(stem, i) for i in range(len(stem)))

    def _ends_double_consonant(self, word: str) -> bool:
        return len(word) >= 2 and word[-1] == word[-2] and self._is_consonant(word, len(word) - 1)

    def _ends_cvc(self, word: str) -> bool:
        """*o: ends consonant-vowel-consonant, the last consonant not w, x or y."""
        if len(word) < 3:
            return False
        n = len(word)
        return (
            self._is_consonant(word, n - 3)
            and not self._is_consonant(word, n - 2)
            and self._is_consonant(word, n - 1)
            and word[-1] not in "wxy"
        )

    def _replace(self, word: str, rules: tuple[tuple[str, str], ...], min_m: int) -> str:
        """Apply the first rule whose suffix matches (longest listed first); its condition is
        m(stem) > min_m. A matching suffix whose condition fails stops the step."""
        for suffix, replacement in rules:
            if word.endswith(suffix):
                stem = word[: len(word) - len(suffix)]
                if self._measure(stem) > min_m:
                    return stem + replacement
                return word
        return word

    def _step1a(self, w: str) -> str:
        if w.endswith("sses"):
            return w[:-2]
        if w.endswith("ies"):
            return w[:-2]
        if w.endswith("ss"):
            return w
        if w.endswith("s"):
            return w[:-1]
        return w

    def _step1b(self, w: str) -> str:
        if w.endswith("eed"):
            return w[:-1] if self._measure(w[:-3]) > 0 else w
        for suffix in ("ed", "ing"):
            if w.endswith(suffix):
                stem = w[: -len(suffix)]
                if not self._has_vowel(stem):
                    return w
                if stem.endswith(("at", "bl", "iz")):
                    return stem + "e"
                if self._ends_double_consonant(stem) and stem[-1] not in "lsz":
                    return stem[:-1]
                if self._measure(stem) == 1 and self._ends_cvc(stem):
                    return stem + "e"
                return stem
        return w

    def _step1c(self, w: str) -> str:
        if w.endswith("y") and self._has_vowel(w[:-1]):
            return w[:-1] + "i"
        return w

    _STEP2 = (
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
        ("izer", "ize"), ("abli", "able"), ("alli", "al"), ("entli", "ent"), ("eli", "e"),
        ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
        ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
        ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    )  # fmt: skip
    _STEP3 = (
        ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"),
        ("ful", ""), ("ness", ""),
    )  # fmt: skip
    _STEP4 = (
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
        "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
    )  # fmt: skip

    def _longest_match(self, w: str, rules: tuple[tuple[str, str], ...]) -> str:
        # The paper lists rules by penultimate letter; at most one suffix can match per group
        # except where one is a suffix of another, so try the longest matching suffix.
        best = max((r for r in rules if w.endswith(r[0])), key=lambda r: len(r[0]), default=None)
        if best is None:
            return w
        suffix, replacement = best
        stem = w[: len(w) - len(suffix)]
        return stem + replacement if self._measure(stem) > 0 else w

    def _step4(self, w: str) -> str:
        candidates = [s for s in self._STEP4 if w.endswith(s)]
        if not candidates:
            return w
        suffix = max(candidates, key=len)
        stem = w[: len(w) - len(suffix)]
        if self._measure(stem) <= 1:
            return w
        if suffix == "ion" and not stem.endswith(("s", "t")):
            return w
        return stem

    def _step5(self, w: str) -> str:
        if w.endswith("e"):
            stem = w[:-1]
            m = self._measure(stem)
            if m > 1 or (m == 1 and not self._ends_cvc(stem)):
                w = stem
        if w.endswith("ll") and self._measure(w) > 1:
            w = w[:-1]
        return w

    def stem(self, word: str) -> str:
        if len(word) <= 2 or not word.isalpha():
            return word
        w = self._step1a(word)
        w = self._step1b(w)
        w = self._step1c(w)
        w = self._longest_match(w, self._STEP2)
        w = self._longest_match(w, self._STEP3)
        w = self._step4(w)
        return self._step5(w)


_STEMMER = PorterStemmer()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of a lowercase word (cached: chat vocabularies are small)."""
    return _STEMMER.stem(word)


def words(text: str) -> list[str]:
    """Lowercase unicode words in order, possessive ``'s`` dropped, inner apostrophes removed
    (``don't`` -> ``dont``, ``Mel's`` -> ``mel``). No stopword removal, no stemming."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    out: list[str] = []
    for match in _WORD.finditer(text):
        token = match.group()
        if token.endswith("'s"):
            token = token[:-2]
        out.append(token.replace("'", ""))
    return out


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``: lowercase words without stopwords, Porter-stemmed, in order
    and with repeats (so term frequencies can be counted)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


@lru_cache(maxsize=32768)
def term_set(text: str) -> frozenset[str]:
    """The distinct index terms of ``text`` (cached: memories are read again and again)."""
    return frozenset(tokenize(text))


@lru_cache(maxsize=65536)
def term_id(token: str) -> int:
    """A stable 31-bit id for a token (blake2b, unlike Python's per-process ``hash``)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass(slots=True)
class _Candidate:
    score: float
    surface: str
    first: int


def keywords(text: str, limit: int = 8) -> list[str]:
    """The salient words of a text in their original spelling, best first, one per stem.

    Salience without corpus statistics: how often the stem occurs, a bonus for names and
    other capitalised words that do not start a sentence, for numbers, and for longer words;
    ties keep the order of first appearance. Stopwords and one-letter words are skipped.
    """
    if limit <= 0:
        return []
    normalized = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    found: dict[str, _Candidate] = {}
    sentence_start = True
    for position, match in enumerate(_WORD_AND_END.finditer(normalized)):
        surface, end = match.groups()
        if surface.endswith("'s"):
            surface = surface[:-2]
        starts_sentence = sentence_start
        sentence_start = end is not None
        lower = surface.lower().replace("'", "")
        if lower in STOPWORDS or len(lower) < 2:
            continue
        capitalised = surface[0].isupper()
        weight = 1.0 + min(len(lower), 12) / 12.0
        if capitalised and not starts_sentence:
            weight += 1.0
        if lower.isdigit():
            weight += 0.5
        key = stem(lower)
        entry = found.get(key)
        if entry is None:
            found[key] = _Candidate(weight, surface, position)
        else:
            entry.score += weight
            if capitalised and not entry.surface[0].isupper():
                entry.surface = surface
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.first))
    return [c.surface for c in ranked[:limit]]
