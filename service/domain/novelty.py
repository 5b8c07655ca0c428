"""Does a near-duplicate say something the memory it resembles does not? (pure functions)

Two texts can sit above the de-duplication similarity (cosine >= 0.95) and still state different
facts: "My flight to Berlin is on May 3rd" and "... May 5th", "I like tea" and "I don't like
tea". A merge keeps the existing text, so merging those would silently drop what the client sent.

:func:`new_information` compares the two texts token by token. Differences that carry no
information are ignored: case, whitespace, punctuation, articles and filler words ("really",
"just"), possessive ``'s``, contractions ("don't" is "do not") and the spelling of a number
("two" is "2", "5th" is "5", "05" is "5"). Anything else the new text has counts: a new word
(so a new name, place, date or number), a change in negation (either way), or the same words in
another order ("tea over coffee" and "coffee over tea"). The rule errs towards "new": a false
"new" costs one more version of the memory; a false "nothing new" loses what the client sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["NEGATION", "ORDER", "new_information", "tokens"]

#: Markers in :func:`new_information`'s result for differences that are not a new token.
NEGATION, ORDER = "<negation>", "<order>"

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")

#: Words whose presence or absence changes nothing a memory states.
IGNORED = frozenset(
    "a an the really very just actually basically quite totally definitely truly literally indeed also "
    "um uh oh hmm please".split()
)
#: Words that negate what they govern (contractions are expanded to "not" first).
NEGATIONS = frozenset("not no never nor neither none nobody nothing nowhere without".split())
#: Contractions spelled without the apostrophe, as people type them.
_BARE_CONTRACTIONS = {
    f"{stem}nt": stem
    for stem in "do does did is was are were could would should have has had must need might".split()
}
_IRREGULAR_NOT = {"can't": "can", "cannot": "can", "cant": "can", "won't": "will", "wont": "will", "shan't": "shall"}
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
} | {word: str(10 * tens) for tens, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)} | {
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
}


def _expand(word: str) -> list[str]:
    """One lowercase word as comparable tokens: contractions split off their "not"."""
    if word in _IRREGULAR_NOT:
        return [_IRREGULAR_NOT[word], "not"]
    if word.endswith("n't"):
        return [word[:-3], "not"]
    if word in _BARE_CONTRACTIONS:
        return [_BARE_CONTRACTIONS[word], "not"]
    if word.endswith("'s"):
        return [word[:-2]]
    return [word]


def _number(token: str) -> str:
    """The canonical spelling of a number token ("5th" and "05" are "5"); others unchanged."""
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    ordinal = _ORDINAL.match(token)
    digits = ordinal.group(1) if ordinal else token
    if not digits.isdigit():
        return token
    return digits.lstrip("0") or "0"


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` that carry information, in order (see the module docstring)."""
    normal = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    out: list[str] = []
    for match in _WORD.finditer(normal):
        out += [_number(t) for t in _expand(match.group()) if t and t not in IGNORED]
    return out


def _negations(words: Sequence[str]) -> int:
    return sum(1 for w in words if w in NEGATIONS)


def _in_order(short: Sequence[str], long: Sequence[str]) -> bool:
    """True when ``short`` is a subsequence of ``long`` (its tokens appear there in its order)."""
    remaining = iter(long)
    return all(token in remaining for token in short)


def new_information(existing: str, new: str) -> frozenset[str]:
    """What ``new`` states that ``existing`` does not: its tokens missing from ``existing``, plus
    :data:`NEGATION` when the two differ in negation and :data:`ORDER` when ``new`` has no new
    token but puts them in another order. Empty means a true duplicate, safe to merge."""
    old, cur = tokens(existing), tokens(new)
    found = set(cur) - set(old)
    if _negations(old) != _negations(cur):
        found.add(NEGATION)
    if not found and not _in_order(list(dict.fromkeys(cur)), old):
        found.add(ORDER)
    return frozenset(found)
