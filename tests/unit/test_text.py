"""Text analysis: tokenizer, Porter stemmer, stable term ids, keyword extraction."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.embedding.text import STOPWORDS, PorterStemmer, keywords, stem, term_id, tokenize, words

# Examples from Porter's 1980 paper (one per rule), plus a few multi-step words.
PORTER_CASES = [
    ("caresses", "caress"), ("ponies", "poni"), ("ties", "ti"), ("caress", "caress"),
    ("cats", "cat"), ("feed", "feed"), ("agreed", "agre"), ("plastered", "plaster"),
    ("bled", "bled"), ("motoring", "motor"), ("sing", "sing"), ("conflated", "conflat"),
    ("troubled", "troubl"), ("sized", "size"), ("hopping", "hop"), ("tanned", "tan"),
    ("falling", "fall"), ("hissing", "hiss"), ("fizzed", "fizz"), ("failing", "fail"),
    ("filing", "file"), ("happy", "happi"), ("sky", "sky"), ("relational", "relat"),
    ("conditional", "condit"), ("rational", "ration"), ("valenci", "valenc"),
    ("hesitanci", "hesit"), ("digitizer", "digit"), ("conformabli", "conform"),
    ("radicalli", "radic"), ("differentli", "differ"), ("vileli", "vile"),
    ("analogousli", "analog"), ("vietnamization", "vietnam"), ("predication", "predic"),
    ("operator", "oper"), ("feudalism", "feudal"), ("decisiveness", "decis"),
    ("hopefulness", "hope"), ("callousness", "callous"), ("formaliti", "formal"),
    ("sensitiviti", "sensit"), ("sensibiliti", "sensibl"), ("triplicate", "triplic"),
    ("formative", "form"), ("formalize", "formal"), ("electriciti", "electr"),
    ("electrical", "electr"), ("hopeful", "hope"), ("goodness", "good"), ("revival", "reviv"),
    ("allowance", "allow"), ("inference", "infer"), ("airliner", "airlin"),
    ("gyroscopic", "gyroscop"), ("adjustable", "adjust"), ("defensible", "defens"),
    ("irritant", "irrit"), ("replacement", "replac"), ("adjustment", "adjust"),
    ("dependent", "depend"), ("adoption", "adopt"), ("homologou", "homolog"),
    ("communism", "commun"), ("activate", "activ"), ("angulariti", "angular"),
    ("homologous", "homolog"), ("effective", "effect"), ("bowdlerize", "bowdler"),
    ("probate", "probat"), ("rate", "rate"), ("cease", "ceas"), ("controll", "control"),
    ("roll", "roll"), ("generalizations", "gener"), ("oscillators", "oscil"),
]  # fmt: skip


@pytest.mark.parametrize(("word", "expected"), PORTER_CASES)
def test_porter_stemmer_matches_the_paper(word: str, expected: str) -> None:
    assert PorterStemmer().stem(word) == expected


def test_stemmer_conflates_inflections() -> None:
    assert stem("painting") == stem("paintings") == stem("painted") == stem("paint") == "paint"
    assert stem("adopted") == stem("adoption") == "adopt"


def test_stemmer_leaves_short_words_and_numbers_alone() -> None:
    assert stem("is") == "is"
    assert stem("2023") == "2023"
    assert stem("mp3s") == "mp3s"


def test_tokenize_drops_stopwords_and_question_words_then_stems() -> None:
    assert tokenize("When did Caroline go to the LGBTQ support groups?") == [
        "carolin",
        "go",
        "lgbtq",
        "support",
        "group",
    ]


def test_tokenize_keeps_repeats_for_term_frequency() -> None:
    assert tokenize("dogs, DOGS and dog") == ["dog", "dog", "dog"]


def test_possessives_and_contractions() -> None:
    assert words("Melanie's kids don't swim") == ["melanie", "kids", "dont", "swim"]
    assert tokenize("Melanie's kids don't swim") == ["melani", "kid", "swim"]
    # A typographic apostrophe is read like a plain one.
    assert words("Mel\u2019s") == ["mel"]


def test_unicode_words_numbers_and_underscores() -> None:
    assert tokenize("Café in Zürich, 2023!") == ["café", "zürich", "2023"]
    assert words("snake_case") == ["snake", "case"]
    assert tokenize("") == []
    assert tokenize("what is it?") == []


def test_stopwords_are_lowercase_single_words() -> None:
    assert all(w == w.lower() and w.isalpha() for w in STOPWORDS)
    assert {"what", "when", "who", "where", "why", "how", "did", "the"} <= STOPWORDS


def test_term_id_is_a_stable_31_bit_hash() -> None:
    # Fixed values: a change here would orphan every stored sparse vector.
    assert term_id("paint") == 1714188197
    assert term_id("carolin") == 662147489
    ids = {term_id(t) for t in ("paint", "painting", "carolin", "lgbtq", "2023", "é")}
    assert len(ids) == 6
    assert all(0 <= i < 2**31 for i in ids)


def test_term_id_does_not_depend_on_the_process_hash_seed() -> None:
    code = "from service.embedding.text import term_id; print(term_id('paint'))"
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(result.stdout.strip())
    assert outputs == {str(term_id("paint"))}


def test_keywords_prefer_names_and_repeated_terms_in_original_spelling() -> None:
    text = "Hey Mel! I went to a LGBTQ support group yesterday. The support group met in Boston."
    result = keywords(text, 4)
    assert result[:2] == ["support", "group"]  # repeated terms first
    assert set(result[2:]) <= {"LGBTQ", "Boston", "Mel"}
    assert len(result) == 4


def test_keywords_dedupe_by_stem_and_skip_stopwords() -> None:
    # painting/paintings/painted share one stem: one keyword, spelled as first seen.
    assert keywords("Painting, paintings and more painting. What a painted world!", 10) == [
        "Painting",
        "world",
    ]


def test_keywords_limit_and_tie_order() -> None:
    # Equal counts: longer words first, then first appearance.
    assert keywords("alpha beta gamma delta", 2) == ["alpha", "gamma"]
    assert keywords("alpha beta", 0) == []
    assert keywords("the and of", 5) == []
