"""The rule-based fact extractor: first-person patterns and deterministic reconciliation."""

from __future__ import annotations

from datetime import datetime

import pytest

from service.digest.facts import RuleFactExtractor, single_valued
from service.digest.model import Fact, FactExtractor, KnownMemory, Turn
from tests.unit.test_extractive import TRIP  # the six-message trip example


def user(*contents: str, role: str = "user") -> list[Turn]:
    return [Turn(f"m{i}", role, role, text, datetime(2024, 5, 1, 12, i)) for i, text in enumerate(contents)]


@pytest.fixture
def extractor() -> RuleFactExtractor:
    return RuleFactExtractor()


async def triples(extractor: RuleFactExtractor, *contents: str) -> list[tuple[str, str]]:
    return [(f.predicate, f.object) for f in await extractor.extract(user(*contents))]


def fact(predicate: str, obj: str, content: str = "") -> Fact:
    return Fact("user", predicate, obj, content or f"User {predicate} {obj}.", "m9")


def memory(id: str, predicate: str | None, obj: str | None, content: str = "", subject: str | None = "user") -> KnownMemory:
    if predicate is None:
        subject = None
    return KnownMemory(id, content or f"User {predicate} {obj}.", subject, predicate, obj)


class TestTheTripExample:
    async def test_facts_in_order_of_appearance(self, extractor: RuleFactExtractor) -> None:
        facts = await extractor.extract(user(*TRIP))
        assert [(f.subject, f.predicate, f.object) for f in facts] == [
            ("user", "likes", "alpine lakes"),
            ("user", "budget_trip_is", "20,000 CNY"),
            ("user", "wants", "a guesthouse with a view of the mountains"),
            ("user", "worried_about", "altitude sickness"),
            ("user", "likes", "photography"),
            ("user", "flight_zurich_is", "booked for 5 October"),
        ]

    async def test_contents_sources_and_importance(self, extractor: RuleFactExtractor) -> None:
        facts = await extractor.extract(user(*TRIP))
        assert [f.content for f in facts] == [
            "User likes alpine lakes.",
            "User's budget for the trip is 20,000 CNY.",
            "User wants a guesthouse with a view of the mountains.",
            "User is worried about altitude sickness.",
            "User likes photography.",
            "User's flight to Zurich is booked for 5 October.",
        ]
        assert [f.source_id for f in facts] == ["m0", "m1", "m2", "m3", "m4", "m5"]
        assert [f.importance for f in facts] == [0.6, 0.8, 0.6, 0.6, 0.6, 0.6]

    def test_satisfies_the_port(self, extractor: RuleFactExtractor) -> None:
        port: FactExtractor = extractor
        assert port is extractor


class TestPatterns:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("I love alpine lakes", ("likes", "alpine lakes")),
            ("I like jazz.", ("likes", "jazz")),
            ("I really enjoy long walks!", ("likes", "long walks")),
            ("I adore cats", ("likes", "cats")),
            ("I also like photography", ("likes", "photography")),
            ("I hate crowds", ("dislikes", "crowds")),
            ("I dislike rain", ("dislikes", "rain")),
            ("I can't stand cilantro", ("dislikes", "cilantro")),
            ("I can\u2019t stand loud music", ("dislikes", "loud music")),
            ("I don't like sushi", ("dislikes", "sushi")),
            ("I do not like spicy food", ("dislikes", "spicy food")),
            ("I'm allergic to peanuts.", ("allergic_to", "peanuts")),
            ("I am allergic to cats", ("allergic_to", "cats")),
            ("I\u2019m allergic to shellfish", ("allergic_to", "shellfish")),
            ("I live in Bern.", ("lives_in", "Bern")),
            ("I moved to Basel", ("lives_in", "Basel")),
            ("I have just moved to Lyon", ("lives_in", "Lyon")),
            ("I work as a nurse", ("works_as", "nurse")),
            ("I work as an engineer.", ("works_as", "engineer")),
            ("I work at Google", ("works_at", "Google")),
            ("I work for the city council", ("works_at", "the city council")),
            ("My name is Anna Maria", ("name_is", "Anna Maria")),
            ("You can call me Max when you like", ("name_is", "Max")),
            ("I'm 34 years old", ("age_is", "34")),
            ("I'm worried about altitude sickness", ("worried_about", "altitude sickness")),
            ("I want a quiet room", ("wants", "a quiet room")),
            ("I'd like a window seat", ("wants", "a window seat")),
            ("I would like to visit Lucerne", ("wants", "to visit Lucerne")),
            ("My favourite colour is green.", ("favourite_colour_is", "green")),
            ("My wife's name is Julia", ("wife_name_is", "Julia")),
            ("My budget for the trip is 20,000 CNY", ("budget_trip_is", "20,000 CNY")),
        ],
    )
    async def test_each_pattern(self, extractor: RuleFactExtractor, text: str, expected: tuple[str, str]) -> None:
        assert await triples(extractor, text) == [expected]

    @pytest.mark.parametrize(
        ("text", "content"),
        [
            ("I'm allergic to peanuts", "User is allergic to peanuts."),
            ("I hate crowds", "User dislikes crowds."),
            ("I don't like sushi", "User dislikes sushi."),
            ("I live in Bern", "User lives in Bern."),
            ("I moved to Basel", "User lives in Basel."),
            ("I work as an engineer", "User works as an engineer."),
            ("I work at Google", "User works at Google."),
            ("My name is Anna", "User's name is Anna."),
            ("I'm 34 years old", "User is 34 years old."),
            ("I'd like a window seat", "User wants a window seat."),
            ("My kids are 5 and 7", "User's kids are 5 and 7."),
        ],
    )
    async def test_contents_follow_a_template_per_predicate(
        self, extractor: RuleFactExtractor, text: str, content: str
    ) -> None:
        assert [f.content for f in await extractor.extract(user(text))] == [content]

    async def test_the_object_stops_at_a_clause_boundary(self, extractor: RuleFactExtractor) -> None:
        assert await triples(extractor, "I hate crowds, but I love museums.") == [
            ("dislikes", "crowds"),
            ("likes", "museums"),
        ]
        assert await triples(extractor, "I love hiking, and swimming too") == [("likes", "hiking")]
        assert await triples(extractor, "I work at Google because it pays well") == [("works_at", "Google")]
        assert await triples(extractor, "I like tea but not coffee") == [("likes", "tea")]

    async def test_and_i_starts_a_new_clause(self, extractor: RuleFactExtractor) -> None:
        assert await triples(extractor, "I live in Bern and I work as a nurse and my name is Eva.") == [
            ("lives_in", "Bern"),
            ("works_as", "nurse"),
            ("name_is", "Eva"),
        ]

    async def test_objects_are_at_most_eight_words(self, extractor: RuleFactExtractor) -> None:
        found = await triples(extractor, "I want a small cosy room with a big window facing the lake")
        assert found == [("wants", "a small cosy room with a big window")]

    async def test_names_are_at_most_four_words(self, extractor: RuleFactExtractor) -> None:
        assert await triples(extractor, "My name is Anna Maria Lisa Ruth Meier") == [("name_is", "Anna Maria Lisa Ruth")]

    async def test_several_sentences_in_one_message(self, extractor: RuleFactExtractor) -> None:
        assert await triples(extractor, "Hi there. I live in Bern! I love cheese.") == [
            ("lives_in", "Bern"),
            ("likes", "cheese"),
        ]

    @pytest.mark.parametrize(
        ("text", "importance"),
        [
            ("I'm allergic to peanuts", 0.8),
            ("My name is Anna", 0.8),
            ("My budget is 300", 0.8),
            ("My hotel is $120 a night", 0.8),
            ("I like jazz", 0.6),
            ("I live in Bern", 0.6),
        ],
    )
    async def test_importance(self, extractor: RuleFactExtractor, text: str, importance: float) -> None:
        assert [f.importance for f in await extractor.extract(user(text))] == [importance]


class TestWhatYieldsNoFact:
    @pytest.mark.parametrize(
        "text",
        [
            "Do I like coffee?",
            "Do I like tea",
            "Am I allergic to nuts",
            "Is my name Anna?",
            "You said I love jazz?",
            "I'm not allergic to cats",
            "I don't hate rain",
            "I don't live in Paris",
            "I do not want a car",
            "I wouldn't like a window seat",
            "My name is not Bob",
            "My budget is not fixed",
            "I am not 30 years old",
            "If I like it, I will buy it.",
            "I like it",
            "I love that!",
            "call me when you land",
            "The weather is nice today.",
            "",
        ],
    )
    async def test_no_fact(self, extractor: RuleFactExtractor, text: str) -> None:
        assert await triples(extractor, text) == []

    async def test_i_would_like_is_a_want_not_a_like(self, extractor: RuleFactExtractor) -> None:
        assert await triples(extractor, "I would like tea") == [("wants", "tea")]

    async def test_assistant_and_other_turns_are_ignored(self, extractor: RuleFactExtractor) -> None:
        for role in ("assistant", "system", "tool"):
            assert await extractor.extract(user("I love alpine lakes", "My name is Bot", role=role)) == []

    async def test_only_the_user_turns_of_a_mixed_run(self, extractor: RuleFactExtractor) -> None:
        turns = [*user("I love jazz", role="assistant"), *user("Hello", "I love opera")]
        assert [(f.object, f.source_id) for f in await extractor.extract(turns)] == [("opera", "m1")]

    async def test_repeats_are_kept_once_first_source_wins(self, extractor: RuleFactExtractor) -> None:
        facts = await extractor.extract(user("I love jazz.", "I LOVE Jazz!", "I love opera"))
        assert [(f.object, f.source_id) for f in facts] == [("jazz", "m0"), ("opera", "m2")]


class TestDecide:
    async def test_the_same_triple_is_nothing_to_do(self, extractor: RuleFactExtractor) -> None:
        known = [memory("a", "likes", "jazz"), memory("b", "likes", "Alpine  Lakes", "The user is fond of them.")]
        decision = await extractor.decide(fact("likes", "alpine lakes"), known)
        assert (decision.op, decision.target_id) == ("none", "b")

    async def test_unstructured_memories_compare_by_content(self, extractor: RuleFactExtractor) -> None:
        new = fact("likes", "jazz", "User likes jazz.")
        same = await extractor.decide(new, [memory("a", None, None, "user  likes JAZZ")])
        other = await extractor.decide(new, [memory("a", None, None, "User likes jazz a lot.")])
        assert (same.op, same.target_id) == ("none", "a")
        assert (other.op, other.target_id) == ("add", None)

    @pytest.mark.parametrize("predicate", ["name_is", "age_is", "lives_in", "works_as", "works_at", "budget_trip_is"])
    async def test_a_new_value_of_a_single_valued_predicate_updates(
        self, extractor: RuleFactExtractor, predicate: str
    ) -> None:
        known = [memory("a", "likes", "Bern"), memory("b", predicate, "Bern")]
        decision = await extractor.decide(fact(predicate, "Zurich"), known)
        assert (decision.op, decision.target_id) == ("update", "b")

    async def test_the_same_value_wins_over_an_update(self, extractor: RuleFactExtractor) -> None:
        known = [memory("old", "lives_in", "Bern"), memory("same", "lives_in", "Zurich")]
        decision = await extractor.decide(fact("lives_in", "zurich"), known)
        assert (decision.op, decision.target_id) == ("none", "same")

    async def test_multi_valued_predicates_add(self, extractor: RuleFactExtractor) -> None:
        decision = await extractor.decide(fact("likes", "opera"), [memory("a", "likes", "jazz")])
        assert (decision.op, decision.target_id) == ("add", None)

    @pytest.mark.parametrize(("new", "old"), [("dislikes", "likes"), ("likes", "dislikes")])
    async def test_a_flipped_preference_updates(self, extractor: RuleFactExtractor, new: str, old: str) -> None:
        known = [memory("a", old, "jazz"), memory("b", old, "Sushi")]
        decision = await extractor.decide(fact(new, "sushi"), known)
        assert (decision.op, decision.target_id) == ("update", "b")

    async def test_another_subject_is_not_the_same_fact(self, extractor: RuleFactExtractor) -> None:
        known = [memory("a", "lives_in", "Bern", "Anna lives in Bern.", subject="anna")]
        decision = await extractor.decide(fact("lives_in", "Zurich"), known)
        assert (decision.op, decision.target_id) == ("add", None)

    async def test_nothing_similar_adds(self, extractor: RuleFactExtractor) -> None:
        new = fact("likes", "jazz")
        decision = await extractor.decide(new, [])
        assert (decision.op, decision.fact, decision.target_id) == ("add", new, None)

    def test_single_valued(self) -> None:
        assert single_valued("name_is") and single_valued("lives_in") and single_valued("favourite_colour_is")
        assert not single_valued("likes") and not single_valued("wants")
