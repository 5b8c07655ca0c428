"""The rule that decides whether a near-duplicate memory may be merged away (pure, no model)."""

from __future__ import annotations

import pytest

from service.domain.novelty import NEGATION, ORDER, new_information, tokens


class TestTrueDuplicates:
    @pytest.mark.parametrize(
        ("existing", "new"),
        [
            ("Ann is allergic to peanuts.", "ann is allergic to peanuts!"),
            ("Prefers tea over coffee", "  Prefers   tea over coffee. "),
            ("The user loves hiking in the mountains", "User really loves hiking in mountains"),
            ("I have two cats", "I have 2 cats"),
            ("My flight is on May 5th", "my flight is on may 5"),
            ("Meeting on 05/06", "Meeting on 5/6"),
            ("I do not eat meat", "I don't eat meat"),
            ("I can't swim", "I cannot swim"),
            ("I dont drink", "I do not drink"),
            ("Mel's dog is called Rex", "Mel dog is called Rex"),
            ("She said: “it’s fine”", "She said: 'it's fine'"),
        ],
    )
    def test_nothing_new(self, existing: str, new: str) -> None:
        assert new_information(existing, new) == frozenset()

    def test_a_less_specific_text_adds_nothing(self) -> None:
        assert new_information("My flight to Berlin is on May 3rd at 9am", "My flight to Berlin is on May 3rd") == frozenset()


class TestNewInformation:
    def test_numbers(self) -> None:
        assert new_information("I have 2 cats", "I have 3 cats") == {"3"}
        assert new_information("I have two cats", "I have three cats") == {"3"}
        assert new_information("The room costs 120 euros", "The room costs 125 euros") == {"125"}

    def test_dates(self) -> None:
        berlin = "My flight to Berlin is on May 3rd"
        assert new_information(berlin, "My flight to Berlin is on May 5th") == {"5"}
        assert new_information(berlin, "My flight to Berlin is on June 3rd") == {"june"}
        assert new_information("Moved in 2019", "Moved in 2021") == {"2021"}

    def test_names(self) -> None:
        assert new_information("My sister Anna lives in Paris", "My sister Maria lives in Paris") == {"maria"}
        assert new_information("Works at Google", "Works at Google DeepMind") == {"deepmind"}

    def test_words_that_stopword_lists_drop_still_count(self) -> None:
        # "may" the month, and "to"/"from" change what a sentence says.
        assert new_information("Flight on June 3", "Flight on May 3") == {"may"}
        assert new_information("Flight to Berlin", "Flight from Berlin") == {"from"}

    @pytest.mark.parametrize(
        ("existing", "new"),
        [
            ("I like tea", "I don't like tea"),
            ("I don't like tea", "I like tea"),
            ("Ann is allergic to peanuts", "Ann is not allergic to peanuts"),
            ("I have been to Rome", "I have never been to Rome"),
            ("Tea with milk", "Tea without milk"),
            ("I can swim", "I can't swim"),
        ],
    )
    def test_negation_either_way(self, existing: str, new: str) -> None:
        assert NEGATION in new_information(existing, new)

    def test_dropping_a_negation_is_new_even_with_no_new_word(self) -> None:
        assert new_information("I do not like tea", "I like tea") == {NEGATION}

    def test_word_order(self) -> None:
        assert new_information("Prefers tea over coffee", "Prefers coffee over tea") == {ORDER}
        assert new_information("Alice owes Bob money", "Bob owes Alice money") == {ORDER}

    def test_new_qualifier(self) -> None:
        assert new_information("Prefers tea", "Prefers green tea") == {"green"}


def test_tokens_normalise_contractions_numbers_and_fillers() -> None:
    assert tokens("The flight isn't on the 05th, it's really on May twenty") == [
        "flight", "is", "not", "on", "5", "it", "on", "may", "20",
    ]
