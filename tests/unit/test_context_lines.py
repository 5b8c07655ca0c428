"""How memories become prompt lines: excerpts of long memories, speakers and kinds."""

from __future__ import annotations

from service.domain.context import ELISION, excerpt, one_line
from service.embedding.text import tokenize


def stems(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


TURN = "Hey Mel! Good to see you. I went to a LGBTQ support group yesterday and it was so powerful. The stories were inspiring."


def test_a_long_memory_keeps_its_query_relevant_sentences_whole_and_marks_the_gaps() -> None:
    got = excerpt(TURN, stems("When did Caroline go to the LGBTQ support group?"))
    assert got == f"{ELISION} I went to a LGBTQ support group yesterday and it was so powerful. {ELISION}"


def test_at_most_two_sentences_in_their_order() -> None:
    text = "Apples are red. Pears are green. Plums are purple. Grapes are green too."
    got = excerpt(text, stems("which fruits are green or purple"))
    assert got == f"{ELISION} Pears are green. Plums are purple. {ELISION}"


def test_short_memories_and_unmatched_ones_stay_whole() -> None:
    assert excerpt("Hi there. I moved to Lisbon.", stems("Lisbon")) == "Hi there. I moved to Lisbon."
    assert excerpt(TURN, stems("quantum chromodynamics")) == TURN
    assert excerpt(TURN, frozenset()) == TURN


def test_one_line_folds_newlines() -> None:
    assert one_line("a\n b\t\tc ") == "a b c"


def test_a_memory_over_its_allowance_keeps_the_best_sentence_that_fits() -> None:
    text = "I adopted a puppy named Rex in March. We walk along the river every single morning."
    fits = lambda t: len(t) <= 45  # noqa: E731 - a stand-in for the token allowance
    assert excerpt(text, stems("When did I adopt the puppy?"), fits) == f"I adopted a puppy named Rex in March. {ELISION}"
    # both sentences kept when they fit together; one sentence is never cut
    assert excerpt(text, stems("puppy river"), lambda t: True) == text
    assert excerpt("I adopted a puppy named Rex in March.", stems("puppy"), lambda t: False) == "I adopted a puppy named Rex in March."
