"""The context packer: the budget holds for any sizes and contents, and the claim rules hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.packing import (
    RECENT_SHARE,
    SOURCES_PER_SUMMARY,
    Inputs,
    Item,
    pack,
)
from service.embedding.tokens import BpeTokenCounter

TOKENS = BpeTokenCounter("o200k_base")
T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)

# Text with words, digits, punctuation, emoji and other scripts, newlines excluded (lines are lines).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r\u2028\u2029\x85"),
    min_size=1,
    max_size=120,
)


def message(i: int, text: str) -> Item:
    at = T0 + timedelta(minutes=i)
    return Item(id=f"m{i}", kind="message", text=f"user: {text}", group=f"## {at:%Y-%m-%d}", order=(at, i))


def memory(i: int, text: str, score: float, day: int = 0) -> Item:
    at = T0 - timedelta(days=day)
    return Item(id=f"k{i}", kind="memory", text=f"Caroline: {text}", score=score, group=f"## {at:%Y-%m-%d}", order=(at, i))


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    recent = [message(i, t) for i, t in enumerate(draw(st.lists(texts, max_size=12)))]
    memories = [
        memory(i, t, draw(st.floats(0, 5)), draw(st.integers(0, 3)))
        for i, t in enumerate(draw(st.lists(texts, max_size=15)))
    ]
    profile = [Item(id=f"p{i}", kind="memory", text=f"- {t}", order=(i,)) for i, t in enumerate(draw(st.lists(texts, max_size=3)))]
    summary = [Item(id=f"s#{i}", kind="summary", text=t, order=(i,)) for i, t in enumerate(draw(st.lists(texts, max_size=4)))]
    return Inputs(profile=profile, summary=summary, memories=memories, recent=recent)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(), st.integers(1, 600))
def test_the_prompt_never_exceeds_the_budget(given_inputs: Inputs, max_tokens: int) -> None:
    packed = pack(given_inputs, max_tokens, TOKENS)
    assert packed.tokens == TOKENS.count(packed.prompt) <= max_tokens
    ids = [i.id for s in packed.sections for i in s.items]
    assert len(ids) == len(set(ids)), "no item twice"
    every_line = {i.text for s in (given_inputs.profile, given_inputs.summary, given_inputs.memories, given_inputs.recent) for i in s}
    for section in packed.sections:
        for item in section.items:
            assert item.text in every_line and item.text in packed.prompt, "items are whole, never cut"
    assert [s.name for s in packed.sections] == ["profile", "summary", "memories", "documents", "recent"]


def test_a_budget_smaller_than_any_item_gives_an_empty_prompt() -> None:
    long = "word " * 50
    packed = pack(Inputs(memories=[memory(0, long, 1.0)], recent=[message(0, long)]), 3, TOKENS)
    assert packed.prompt == "" and packed.tokens == 0
    assert all(s.items == [] and s.text == "" for s in packed.sections)


def test_the_newest_messages_come_first_within_their_share() -> None:
    recent = [message(i, f"message number {i} about the weather") for i in range(30)]
    packed = pack(Inputs(recent=recent), 100, TOKENS)
    [section] = [s for s in packed.sections if s.name == "recent"]
    kept = [i.id for i in section.items]
    assert kept == [f"m{i}" for i in range(30 - len(kept), 30)], "a contiguous run ending at the newest"
    assert len(kept) > 1


def test_memories_take_what_the_recent_share_leaves() -> None:
    recent = [message(i, f"message number {i} about the weather today") for i in range(40)]
    memories = [memory(i, f"fact {i} about the garden and its roses", 10 - i) for i in range(5)]
    packed = pack(Inputs(memories=memories, recent=recent), 200, TOKENS)
    by_name = {s.name: s for s in packed.sections}
    assert [i.id for i in by_name["memories"].items] == [f"k{i}" for i in range(5)]
    assert by_name["recent"].items, "older messages fill what memories leave"
    assert packed.tokens <= 200
    assert RECENT_SHARE < 1


def test_a_memory_that_does_not_fit_is_skipped_for_smaller_ones() -> None:
    big = memory(0, "a very long memory " * 30, 9.0)
    small = memory(1, "short one", 1.0)
    packed = pack(Inputs(memories=[big, small]), 40, TOKENS)
    [section] = [s for s in packed.sections if s.name == "memories"]
    assert [i.id for i in section.items] == ["k1"]


def test_lines_of_one_date_share_one_header_in_time_order() -> None:
    memories = [memory(0, "later fact", 2.0, day=0), memory(1, "earlier fact", 3.0, day=2), memory(2, "same day", 1.0, day=0)]
    packed = pack(Inputs(memories=memories), 500, TOKENS)
    [section] = [s for s in packed.sections if s.name == "memories"]
    lines = section.text.splitlines()
    assert lines[0] == "# Memories"
    assert lines.count(f"## {T0:%Y-%m-%d}") == 1
    assert lines.index(f"## {T0 - timedelta(days=2):%Y-%m-%d}") < lines.index(f"## {T0:%Y-%m-%d}")


def test_companions_follow_the_memory_they_complete() -> None:
    answer = memory(9, "Yes, the lake trip was in June.", 0.0)
    question = Item(
        id="k1", kind="memory", text="Melanie: When did you go to the lake?", score=5.0,
        group=f"## {T0:%Y-%m-%d}", order=(T0, 1), companions=((answer, 0.6),),
    )  # fmt: skip
    packed = pack(Inputs(memories=[question]), 200, TOKENS)
    [section] = [s for s in packed.sections if s.name == "memories"]
    assert [i.id for i in section.items] == ["k1", "k9"]
    assert section.items[1].score == 3.0


def test_a_summary_stands_for_its_sources_beyond_the_few_best() -> None:
    sources = [memory(i, f"raw turn {i} about the trip budget and plans", 4.0 - i * 0.1) for i in range(6)]
    summary = Item(
        id="sum", kind="summary", text="(summary) the trip: budget, lodging, flights", score=5.0,
        group=f"## {T0:%Y-%m-%d}", order=(T0, 0), covers=frozenset(s.id for s in sources),
    )  # fmt: skip
    packed = pack(Inputs(memories=[summary, *sources]), 1000, TOKENS)
    [section] = [s for s in packed.sections if s.name == "memories"]
    taken = [i.id for i in section.items]
    assert "sum" in taken and len(taken) == 1 + SOURCES_PER_SUMMARY


def test_near_duplicates_are_folded() -> None:
    a = memory(0, "I adopted a puppy named Max last week", 3.0)
    b = memory(1, "i adopted a puppy named max last week!", 2.0)
    c = memory(2, "My sister lives in Oslo", 1.0)
    packed = pack(Inputs(memories=[a, b, c]), 500, TOKENS)
    [section] = [s for s in packed.sections if s.name == "memories"]
    assert [i.id for i in section.items] == ["k0", "k2"]
