"""Fusion ranking: query plans, date parsing, score parts, and the ordering they produce."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from service.domain.query_plan import DatePeriod, QueryPlan, parse_dates, plan_query
from service.domain.ranking import Candidate, RankingParams, rank

DAY = 86400.0
T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC).timestamp()


def payload(session: str = "s1", seq: int = 0, speaker: str = "Ann", event_time: float = T0, **extra: Any) -> dict:
    return {"session_id": session, "seq": seq, "speaker": speaker, "event_time": event_time, **extra}


def plan(text: str = "query", speakers: tuple[str, ...] = (), periods: tuple[DatePeriod, ...] = ()) -> QueryPlan:
    return QueryPlan(text=text, search_text=text, speakers=speakers, periods=periods)


BARE = RankingParams(
    semantic_weight=1.0, keyword_weight=1.0, speaker_weight=0.0, date_weight=0.0, context_weight=0.0
)


# --------------------------------------------------------------------------- plan_query


class TestPlanQuery:
    def test_names_known_speakers_in_query_order_and_strips_them(self) -> None:
        p = plan_query("Did Melanie and Caroline's kids go camping?", ["Caroline", "Melanie", "Bob"])
        assert p.speakers == ("Melanie", "Caroline")
        assert p.search_text == "Did and kids go camping?"
        assert p.text == "Did Melanie and Caroline's kids go camping?"

    def test_first_name_matches_a_full_speaker_name(self) -> None:
        p = plan_query("what does caroline paint?", ["Caroline Smith"])
        assert p.speakers == ("Caroline Smith",)
        assert p.search_text == "what does paint?"

    def test_no_speaker_named_keeps_the_query(self) -> None:
        p = plan_query("What did she paint?", ["Caroline", "Melanie"])
        assert p.speakers == ()
        assert p.search_text == "What did she paint?"

    def test_name_is_kept_when_nothing_else_would_remain(self) -> None:
        p = plan_query("What about Caroline?", ["Caroline"])
        assert p.speakers == ("Caroline",)
        assert p.search_text == "What about Caroline?"

    def test_name_must_be_a_whole_word(self) -> None:
        assert plan_query("Is Annabel coming?", ["Ann"]).speakers == ()

    def test_dates_are_read(self) -> None:
        p = plan_query("What did Nate cook on 9 November, 2022?", ["Nate"])
        start = datetime(2022, 11, 9, tzinfo=UTC).timestamp()
        assert p.periods == (DatePeriod(start, start + DAY),)


class TestParseDates:
    @staticmethod
    def ts(*args: int) -> float:
        return datetime(*args, tzinfo=UTC).timestamp()

    @pytest.mark.parametrize(
        "text",
        ["on 9 November, 2022", "on 9th November 2022", "on November 9, 2022", "Nov 9th 2022", "2022-11-09"],
    )
    def test_day(self, text: str) -> None:
        assert parse_dates(text) == (DatePeriod(self.ts(2022, 11, 9), self.ts(2022, 11, 10)),)

    def test_month_and_year(self) -> None:
        assert parse_dates("in December 2023") == (DatePeriod(self.ts(2023, 12, 1), self.ts(2024, 1, 1)),)
        assert parse_dates("during 2022") == (DatePeriod(self.ts(2022, 1, 1), self.ts(2023, 1, 1)),)

    def test_two_dates(self) -> None:
        periods = parse_dates("between 11 August 2023 and 15 August 2023")
        assert [p.start for p in periods] == [self.ts(2023, 8, 11), self.ts(2023, 8, 15)]

    @pytest.mark.parametrize("text", ["May I ask you something?", "last week", "on 9 November", "2022 was fun"])
    def test_no_absolute_date(self, text: str) -> None:
        assert parse_dates(text) == ()

    def test_an_impossible_day_falls_back_to_its_month(self) -> None:
        assert parse_dates("31 February 2023") == (DatePeriod(self.ts(2023, 2, 1), self.ts(2023, 3, 1)),)


# --------------------------------------------------------------------------- rank


class TestRank:
    def test_empty_pool(self) -> None:
        assert rank(plan(), [], []) == []

    def test_dense_only_orders_by_cosine_with_min_max_parts(self) -> None:
        dense = [
            Candidate("a", 0.2, payload(seq=0)),
            Candidate("b", 0.8, payload(seq=5)),
            Candidate("c", 0.5, payload(seq=9)),
        ]
        out = rank(plan(), dense, [], BARE)
        assert [r.id for r in out] == ["b", "c", "a"]
        assert [r.parts.semantic for r in out] == pytest.approx([1.0, 0.5, 0.0])
        assert all(r.parts.keyword == 0.0 for r in out)

    def test_keyword_part_is_bm25_over_the_best(self) -> None:
        sparse = [Candidate("a", 6.0, payload(seq=0)), Candidate("b", 3.0, payload(seq=5))]
        out = rank(plan(), [], sparse, BARE)
        assert [(r.id, r.parts.keyword) for r in out] == [("a", 1.0), ("b", 0.5)]

    def test_a_memory_found_by_both_searches_beats_one_found_by_one(self) -> None:
        dense = [
            Candidate("both", 0.7, payload(seq=0)),
            Candidate("dense", 0.8, payload(seq=5)),
            Candidate("low", 0.1, payload(seq=9)),
        ]
        sparse = [Candidate("sparse", 9.0, payload(seq=20)), Candidate("both", 8.0, payload(seq=0))]
        out = rank(plan(), dense, sparse, BARE)
        assert out[0].id == "both"
        both = out[0]
        assert both.parts.semantic == pytest.approx(6 / 7)
        assert both.parts.keyword == pytest.approx(8 / 9)
        # A sparse-only hit takes the lowest cosine seen.
        sparse_only = next(r for r in out if r.id == "sparse")
        assert sparse_only.parts.semantic == 0.0

    def test_score_is_the_weighted_sum_of_parts(self) -> None:
        params = RankingParams(
            semantic_weight=0.7, keyword_weight=1.3, speaker_weight=0.9, date_weight=0.4,
            context_weight=0.6, recency_weight=0.2, importance_weight=0.3, recency_half_life_days=10.0,
        )  # fmt: skip
        dense = [
            Candidate("a", 0.9, payload(seq=1, speaker="Ann", importance=0.8, event_time=T0 - 10 * DAY)),
            Candidate("b", 0.4, payload(seq=2, speaker="Bob")),
            Candidate("c", 0.1, payload(session="s2", seq=0)),
        ]
        sparse = [Candidate("b", 5.0, payload(seq=2, speaker="Bob")), Candidate("a", 2.5, payload(seq=1))]
        q = plan(speakers=("Ann",), periods=(DatePeriod(T0 - DAY, T0 + DAY),))
        out = rank(q, dense, sparse, params, now=T0)
        for r in out:
            p = r.parts
            expected = (
                0.7 * p.semantic + 1.3 * p.keyword + 0.9 * p.speaker + 0.4 * p.date
                + 0.6 * p.context + 0.2 * p.recency + 0.3 * p.importance
            )  # fmt: skip
            assert r.score == pytest.approx(expected)
            for value in (p.semantic, p.keyword, p.speaker, p.date, p.context, p.recency, p.importance):
                assert 0.0 <= value <= 1.0
        a = next(r for r in out if r.id == "a")
        assert a.parts.recency == pytest.approx(0.5)  # ten days old, half-life ten days
        assert a.parts.importance == pytest.approx(0.8)
        assert a.parts.speaker == 1.0

    def test_named_speaker_lifts_their_turns(self) -> None:
        dense = [
            Candidate("bob_says", 0.9, payload(seq=0, speaker="Bob")),
            Candidate("ann_says", 0.8, payload(seq=5, speaker="Ann")),
            Candidate("other", 0.1, payload(seq=9, speaker="Bob")),
        ]
        params = replace(BARE, speaker_weight=1.0)
        assert rank(plan(), dense, [], params)[0].id == "bob_says"
        out = rank(plan(speakers=("Ann",)), dense, [], params)
        assert out[0].id == "ann_says"
        assert out[0].parts.speaker == 1.0
        assert out[1].parts.speaker == 0.0

    def test_speaker_named_second_gets_the_smaller_part(self) -> None:
        dense = [
            Candidate("bob", 0.5, payload(seq=0, speaker="Bob")),
            Candidate("ann", 0.5, payload(seq=5, speaker="Ann")),
        ]
        params = replace(BARE, speaker_weight=1.0, other_speaker_part=0.5)
        out = rank(plan(speakers=("Ann", "Bob")), dense, [], params)
        assert [(r.id, r.parts.speaker) for r in out] == [("ann", 1.0), ("bob", 0.5)]

    def test_date_mentioned_in_query_lifts_memories_of_that_day(self) -> None:
        day = DatePeriod(T0 - 3600, T0 - 3600 + DAY)
        dense = [
            Candidate("old", 0.9, payload(seq=0, event_time=T0 - 30 * DAY)),
            Candidate("that_day", 0.7, payload(session="s2", seq=0, event_time=T0)),
            Candidate("low", 0.1, payload(session="s3", seq=0, event_time=T0 - 60 * DAY)),
        ]
        params = replace(BARE, date_weight=0.8, date_scale_days=7.0)
        out = rank(plan(periods=(day,)), dense, [], params)
        assert out[0].id == "that_day"
        assert out[0].parts.date == 1.0
        old = next(r for r in out if r.id == "old")
        assert 0.0 < old.parts.date < 0.05  # about a month outside, decaying by e per week
        assert rank(plan(), dense, [], params)[0].id == "old"

    def test_context_lifts_the_neighbour_of_a_strong_hit(self) -> None:
        # "q" (a question) matches the query strongly; its answer "ans" (next turn) and an
        # unrelated turn "far" score the same on their own.
        dense = [
            Candidate("q", 0.9, payload(seq=3, speaker="Bob")),
            Candidate("ans", 0.5, payload(seq=4, speaker="Ann")),
            Candidate("far", 0.5, payload(seq=10, speaker="Ann")),
            Candidate("floor", 0.1, payload(seq=20, speaker="Ann")),
        ]
        plain = rank(plan(), dense, [], BARE)
        assert [r.id for r in plain][1:3] == ["ans", "far"]  # tie broken by id
        out = rank(plan(), dense, [], replace(BARE, context_weight=0.9))
        ans = next(r for r in out if r.id == "ans")
        far = next(r for r in out if r.id == "far")
        assert ans.parts.context == pytest.approx(0.5)  # q's relevance (1 + 0) / 2
        assert far.parts.context == 0.0
        assert ans.score > far.score

    def test_context_stays_within_a_session(self) -> None:
        dense = [Candidate("a", 0.9, payload(session="s1", seq=3)), Candidate("b", 0.5, payload(session="s2", seq=4))]
        out = rank(plan(), dense, [], replace(BARE, context_weight=1.0))
        assert next(r for r in out if r.id == "b").parts.context == 0.0

    def test_recency_and_importance_order_when_weighted(self) -> None:
        dense = [
            Candidate("old", 0.5, payload(seq=0, event_time=T0 - 100 * DAY, importance=0.1)),
            Candidate("new", 0.5, payload(seq=5, event_time=T0 - DAY, importance=0.1)),
            Candidate("key", 0.5, payload(seq=9, event_time=T0 - 100 * DAY, importance=1.0)),
        ]
        by_recency = rank(plan(), dense, [], replace(BARE, recency_weight=1.0), now=T0)
        assert by_recency[0].id == "new"
        by_importance = rank(plan(), dense, [], replace(BARE, importance_weight=1.0), now=T0)
        assert by_importance[0].id == "key"
        # Weighted 0, the parts are still reported but do not move the order.
        neutral = rank(plan(), dense, [], BARE, now=T0)
        assert [r.id for r in neutral] == ["key", "new", "old"]  # ties broken by id
        assert next(r for r in neutral if r.id == "new").parts.recency > 0.9

    def test_limit_and_duplicate_hits(self) -> None:
        dense = [
            Candidate("a", 0.9, payload(seq=0)),
            Candidate("a", 0.95, payload(seq=0)),
            Candidate("b", 0.1, payload(seq=5)),
        ]
        out = rank(plan(), dense, [], BARE, limit=1)
        assert len(out) == 1
        assert out[0].id == "a"

    def test_default_params_are_the_tuned_recipe(self) -> None:
        p = RankingParams()
        assert p.speaker_weight > 0 and p.context_weight > 0 and p.date_weight > 0
        assert p.recency_weight == 0.0 and p.importance_weight == 0.0

    def test_invalid_params(self) -> None:
        with pytest.raises(ValueError):
            RankingParams(date_scale_days=0)


# --------------------------------------------------------------------------- helpers


def test_pronouns_name_the_roles_of_unnamed_messages() -> None:
    roles = ["user", "assistant"]
    assert plan_query("What did I tell you about my cat?", roles).speakers == ("user", "assistant")
    assert plan_query("What did you suggest for my trip?", roles).speakers == ("assistant", "user")
    assert plan_query("What did I tell you?", roles).search_text == "What did I tell you?"  # pronouns stay
    assert plan_query("What did I do?", ["Caroline", "Melanie"]).speakers == ()  # names, not roles
    assert plan_query("Where does Ann live?", ["Ann", "user"]).speakers == ("Ann",)
