"""The extractive digest: sentences, key phrases, entities, and the no-LLM summarizer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from service.digest.extractive import ExtractiveSummarizer, entities, keyphrases, sentences
from service.digest.model import Summarizer, Turn
from service.embedding.tokens import BpeTokenCounter

TRIP = [
    "I love alpine lakes",
    "My budget for the trip is 20,000 CNY",
    "I want a guesthouse with a view of the mountains",
    "I'm worried about altitude sickness",
    "I also like photography",
    "My flight to Zurich is booked for 5 October",
]
START = datetime(2024, 5, 1, 12, 0)


def turns(*contents: str, role: str = "user", first: int = 0) -> list[Turn]:
    return [
        Turn(f"m{first + i}", role, role, text, START + timedelta(minutes=first + i)) for i, text in enumerate(contents)
    ]


def chat(*pairs: tuple[str, str], first: int = 0) -> list[Turn]:
    """Turns from (role, content) pairs."""
    return [turns(text, role=role, first=first + i)[0] for i, (role, text) in enumerate(pairs)]


@pytest.fixture(scope="module")
def counter() -> BpeTokenCounter:
    return BpeTokenCounter("o200k_base")


@pytest.fixture(scope="module")
def summarizer(counter: BpeTokenCounter) -> ExtractiveSummarizer:
    return ExtractiveSummarizer(counter)


class TestSentences:
    def test_each_call_gets_its_own_list(self) -> None:
        # The split is cached per text: a caller's change to its list must not reach the next caller.
        first = sentences("One thing. Another thing.")
        first.append("changed")
        assert sentences("One thing. Another thing.") == ["One thing.", "Another thing."]

    def test_splits_at_end_marks_followed_by_space_or_end(self) -> None:
        assert sentences("I went home. It rained! Did you see it? Yes") == [
            "I went home.",
            "It rained!",
            "Did you see it?",
            "Yes",
        ]

    def test_keeps_abbreviations_and_initials_inside_a_sentence(self) -> None:
        text = "Mr. Smith met Dr. Jones, e.g. at 5 p.m. today. J. K. Rowling wrote it."
        assert sentences(text) == ["Mr. Smith met Dr. Jones, e.g. at 5 p.m. today.", "J. K. Rowling wrote it."]

    def test_a_period_after_a_web_address_ends_a_sentence(self) -> None:
        assert sentences("Book at example.com. Then pack.") == ["Book at example.com.", "Then pack."]

    def test_the_pronoun_i_ends_a_sentence(self) -> None:
        assert sentences("So am I. Then we left.") == ["So am I.", "Then we left."]

    def test_decimals_and_grouped_numbers_do_not_split(self) -> None:
        assert sentences("It costs 3.50 CHF or 20,000.5 CNY. Fine.") == ["It costs 3.50 CHF or 20,000.5 CNY.", "Fine."]

    def test_line_breaks_end_sentences(self) -> None:
        assert sentences("first line\n\nsecond line\n") == ["first line", "second line"]

    def test_runs_of_marks_and_closing_quotes_stay_with_their_sentence(self) -> None:
        assert sentences('Really?! He said "stop." Then nothing...') == ["Really?!", 'He said "stop."', "Then nothing..."]

    @pytest.mark.parametrize("text", ["", "   ", "...", "?!", "\n\n"])
    def test_never_returns_empty_or_punctuation_only_pieces(self, text: str) -> None:
        assert sentences(text) == []


class TestKeyphrases:
    def test_phrases_split_at_stopwords_verbs_and_punctuation(self) -> None:
        found = keyphrases("\n".join(TRIP), limit=20)
        assert "alpine lakes" in found
        assert "altitude sickness" in found
        assert "20,000 CNY" in found
        assert not any(p.lower().startswith(("love", "want", "worried", "like")) for p in found)

    def test_numbers_and_names_rank_first(self) -> None:
        found = keyphrases("\n".join(TRIP), limit=5)
        assert found[:2] == ["20,000 CNY", "5 October"]
        assert "Zurich" in found

    def test_at_most_three_words(self) -> None:
        found = keyphrases("We saw huge grey granite mountain peaks yesterday.", limit=10)
        assert found and all(len(p.split()) <= 3 for p in found)

    def test_one_phrase_per_stem_set_in_its_first_spelling(self) -> None:
        found = keyphrases("Alpine lakes are cold. We love alpine lake. Alpine Lakes again.", limit=10)
        assert [p for p in found if p.lower().startswith("alpine")] == ["Alpine lakes"]

    def test_repeated_words_rank_higher(self) -> None:
        found = keyphrases("The hotel was fine. The hotel pool was cold. Breakfast at the hotel.", limit=10)
        assert found.index("hotel") < found.index("Breakfast")
        assert found[0] == "hotel pool"  # RAKE: the repeated word lifts the longer phrase it is in

    def test_limit(self) -> None:
        assert len(keyphrases("\n".join(TRIP), limit=3)) == 3
        assert keyphrases("\n".join(TRIP), limit=0) == []

    def test_stopwords_only_gives_nothing(self) -> None:
        assert keyphrases("and then it was so very much of the") == []


class TestEntities:
    def test_a_text_finds_what_its_sentences_find_in_order(self) -> None:
        # Found a sentence at a time (cached), then merged: repeats across sentences kept once.
        text = "We met Anna in Bern in May 2021. Then we paid ANNA $300.\nShe met Tom Baker."
        assert entities(text) == ["Anna", "Bern", "May 2021", "$300", "Tom Baker"]

    def test_names_amounts_and_dates_in_order(self) -> None:
        text = (
            "We went to New York on October 5th, 2023 and paid $300 for 5 km. "
            "On 2023-05-08 Anna spent €1.5 million, 30% off, USD 40. See you on 3rd of May."
        )
        assert entities(text) == [
            "New York",
            "October 5th, 2023",
            "$300",
            "5 km",
            "2023-05-08",
            "Anna",
            "€1.5 million",
            "30%",
            "USD 40",
            "3rd of May",
        ]

    def test_the_trip_example(self) -> None:
        assert entities("\n".join(TRIP)) == ["20,000 CNY", "Zurich", "5 October"]

    def test_no_repeats_case_insensitively(self) -> None:
        assert entities("I met Anna. Then ANNA left, and later anna came back with Anna.") == ["Anna"]

    def test_a_single_capitalised_word_at_a_sentence_start_is_not_a_name(self) -> None:
        assert entities("Yesterday was fine. Zurich is lovely.") == []

    def test_a_multi_word_name_at_a_sentence_start_is(self) -> None:
        assert entities("New York is big.") == ["New York"]

    def test_numbers_with_stopwords_or_ordinals_after_them_are_not_amounts(self) -> None:
        assert entities("I have 5 of them on the 5th floor") == []


class TestCondense:
    def test_satisfies_the_port(self, summarizer: ExtractiveSummarizer) -> None:
        port: Summarizer = summarizer
        assert port is summarizer

    async def test_keeps_numbers_and_names_verbatim_when_the_budget_allows(self, summarizer: ExtractiveSummarizer) -> None:
        digest = await summarizer.condense(turns(*TRIP), 200)
        assert "20,000 CNY" in digest.text
        assert "guesthouse" in digest.text
        assert "Zurich" in digest.text and "5 October" in digest.text

    async def test_one_line_per_run_of_a_speaker_in_original_order(self, summarizer: ExtractiveSummarizer) -> None:
        digest = await summarizer.condense(turns(*TRIP), 200)
        assert digest.text == "user: " + ". ".join(TRIP)

    @pytest.mark.parametrize("budget", [1, 2, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 100])
    async def test_stays_within_the_budget(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter, budget: int
    ) -> None:
        digest = await summarizer.condense(turns(*TRIP), budget)
        assert counter.count(digest.text) <= budget

    async def test_a_budget_of_one_token_gives_no_text(self, summarizer: ExtractiveSummarizer) -> None:
        assert (await summarizer.condense(turns(*TRIP), 1)).text == ""

    async def test_never_cuts_a_sentence(self, summarizer: ExtractiveSummarizer) -> None:
        for budget in (10, 20, 30):
            text = (await summarizer.condense(turns(*TRIP), budget)).text
            assert text.startswith("user: ")
            kept = text.removeprefix("user: ").split(". ")
            assert kept and all(sentence in TRIP for sentence in kept)

    async def test_salient_sentences_win_a_small_budget(self, summarizer: ExtractiveSummarizer) -> None:
        text = (await summarizer.condense(turns(*TRIP), 20)).text
        assert "20,000 CNY" in text
        assert "photography" not in text

    async def test_keywords_topic_and_importance(self, summarizer: ExtractiveSummarizer) -> None:
        digest = await summarizer.condense(turns(*TRIP), 200)
        assert "Zurich" in digest.keywords and "20,000 CNY" in digest.keywords and "5 October" in digest.keywords
        assert len(digest.keywords) <= 12
        assert len({k.casefold() for k in digest.keywords}) == len(digest.keywords)
        assert digest.topic == digest.topic.lower()
        assert 0 < len(digest.topic.split()) <= 5 and len(digest.topic) <= 60
        assert "alpine lakes" in digest.topic
        assert 0.3 <= digest.importance <= 0.9

    async def test_facts_and_names_are_more_important_than_small_talk(self, summarizer: ExtractiveSummarizer) -> None:
        facts = await summarizer.condense(turns(*TRIP), 200)
        chatter = await summarizer.condense(
            chat(("user", "nice weather today"), ("assistant", "indeed, lovely weather"), ("user", "sure, cool")), 200
        )
        assert chatter.importance == 0.3
        assert facts.importance > chatter.importance

    async def test_near_duplicates_are_picked_once(self, summarizer: ExtractiveSummarizer) -> None:
        digest = await summarizer.condense(
            turns("I love alpine lakes near Zurich.", "I love the alpine lakes near Zurich!", "Book the train."), 200
        )
        assert digest.text.count("alpine lakes") == 1
        assert "Book the train." in digest.text

    async def test_speakers_alternate_on_their_own_lines(self, summarizer: ExtractiveSummarizer) -> None:
        digest = await summarizer.condense(
            chat(("user", "Where should I stay in Lucerne?"), ("assistant", "The Hotel Schweizerhof is near the lake.")),
            200,
        )
        assert digest.text.splitlines() == [
            "user: Where should I stay in Lucerne?",
            "assistant: The Hotel Schweizerhof is near the lake.",
        ]

    async def test_no_turns_or_blank_turns_give_an_empty_digest(self, summarizer: ExtractiveSummarizer) -> None:
        for given in ([], turns("   ", "...")):
            digest = await summarizer.condense(given, 100)
            assert (digest.text, digest.topic, digest.keywords, digest.importance) == ("", "", [], 0.3)

    async def test_is_deterministic(self, counter: BpeTokenCounter) -> None:
        first = await ExtractiveSummarizer(counter).condense(turns(*TRIP), 30)
        second = await ExtractiveSummarizer(counter).condense(turns(*TRIP), 30)
        assert first == second


class TestFold:
    OLD = chat(
        ("user", "My budget for the trip is 20,000 CNY."),
        ("assistant", "Zurich has many alpine lakes nearby."),
        ("user", "I love alpine lakes."),
    )
    NEW = chat(
        ("user", "My flight to Geneva is booked for 5 October."),
        ("assistant", "Then take the train to Montreux on 6 October."),
        first=3,
    )

    async def test_nothing_gives_an_empty_summary(self, summarizer: ExtractiveSummarizer) -> None:
        assert await summarizer.fold("", [], 100) == ""
        assert await summarizer.fold("", turns("  "), 100) == ""

    async def test_starts_from_the_turns_when_there_is_no_summary(self, summarizer: ExtractiveSummarizer) -> None:
        summary = await summarizer.fold("", self.OLD, 200)
        assert summary == (await summarizer.condense(self.OLD, 200)).text

    async def test_keeps_the_previous_lines_and_adds_the_new_in_order(self, summarizer: ExtractiveSummarizer) -> None:
        previous = await summarizer.fold("", self.OLD, 400)
        summary = await summarizer.fold(previous, self.NEW, 400)
        assert summary == (
            previous  # its last line is the user's, so the user's new sentence joins it
            + " My flight to Geneva is booked for 5 October."
            + "\nassistant: Then take the train to Montreux on 6 October."
        )

    @pytest.mark.parametrize("budget", [1, 10, 20, 30, 45, 60, 80])
    async def test_stays_within_the_budget(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter, budget: int
    ) -> None:
        previous = await summarizer.fold("", self.OLD, budget)
        summary = await summarizer.fold(previous, self.NEW, budget)
        assert counter.count(summary) <= budget

    async def test_the_newest_material_enters_and_the_old_drops_first(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter
    ) -> None:
        previous = (
            "user: My budget for the trip to Zurich is 20,000 CNY.\n"
            "assistant: Zurich has alpine lakes.\n"
            "user: The weather was nice."
        )
        budget = counter.count(previous)  # full: the new sentence must push old ones out
        summary = await summarizer.fold(previous, chat(("user", "I land on 5 October.")), budget)
        assert counter.count(summary) <= budget
        assert summary == "user: My budget for the trip to Zurich is 20,000 CNY. I land on 5 October."

    async def test_new_material_enters_even_when_the_old_is_more_salient(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter
    ) -> None:
        previous = (
            "user: My flight to Zurich is booked for 5 October.\n"
            "assistant: Zurich airport has trains to Zurich HB every 10 minutes."
        )
        summary = await summarizer.fold(previous, chat(("user", "Good to know.")), counter.count(previous))
        assert summary == "assistant: Zurich airport has trains to Zurich HB every 10 minutes.\nuser: Good to know."

    async def test_old_sentences_stay_while_there_is_room(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter
    ) -> None:
        previous = "user: My budget for the trip to Zurich is 20,000 CNY.\nassistant: Zurich has alpine lakes."
        new = chat(("user", "I land on 5 October."))
        roomy = await summarizer.fold(previous, new, 400)
        summary = await summarizer.fold(previous, new, counter.count(roomy))
        assert summary == roomy == previous + "\nuser: I land on 5 October."

    async def test_a_rolling_summary_never_outgrows_its_budget(
        self, summarizer: ExtractiveSummarizer, counter: BpeTokenCounter
    ) -> None:
        summary = ""
        for index in range(12):
            summary = await summarizer.fold(summary, chat(("user", f"Day {index + 1}: we visited lake number {index}.")), 40)
            assert counter.count(summary) <= 40
            assert f"lake number {index}." in summary

    async def test_previous_lines_keep_their_text(self, summarizer: ExtractiveSummarizer) -> None:
        previous = "user: I work in Bern. My cat is called Mia.\nassistant: Noted, 3 cats in total?"
        summary = await summarizer.fold(previous, chat(("user", "Mia is 4 years old.")), 400)
        assert summary == previous + "\nuser: Mia is 4 years old."

    async def test_lines_without_a_speaker_survive(self, summarizer: ExtractiveSummarizer) -> None:
        previous = "The user plans a trip to Zurich in October."
        summary = await summarizer.fold(previous, chat(("user", "I booked the hotel.")), 400)
        assert summary == previous + "\nuser: I booked the hotel."

    async def test_is_deterministic(self, summarizer: ExtractiveSummarizer) -> None:
        previous = await summarizer.fold("", self.OLD, 30)
        assert await summarizer.fold(previous, self.NEW, 30) == await summarizer.fold(previous, self.NEW, 30)
