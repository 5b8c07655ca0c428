"""The document chunker: fixed examples, then properties over generated Markdown-ish text."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.digest.chunking import MIN_CHUNK_TOKENS, Chunk, chunk_text
from service.embedding.tokens import BpeTokenCounter

COUNT = BpeTokenCounter().count


def chunks(text: str, max_tokens: int = 64, overlap: int = 0) -> list[Chunk]:
    return chunk_text(text, COUNT, max_tokens, overlap)


class TestExamples:
    def test_a_short_text_is_one_chunk(self) -> None:
        [only] = chunks("  Hello there, world.  \n")
        assert (only.text, only.start, only.end, only.headings) == ("Hello there, world.", 2, 21, ())
        assert only.tokens == COUNT("Hello there, world.")

    def test_blank_text_has_no_chunks(self) -> None:
        assert chunks("") == [] and chunks(" \n\n\t ") == []

    def test_sections_follow_headings_and_keep_their_path(self) -> None:
        text = "# Guide\nIntro.\n## Install\n### Linux\nRun apt.\n## Use\nCall it.\n# Appendix\nMore."
        got = chunks(text)
        assert [c.headings for c in got] == [
            ("Guide",),
            ("Guide", "Install", "Linux"),  # the empty "Install" section joins "Linux"
            ("Guide", "Use"),
            ("Appendix",),
        ]
        assert got[1].text == "## Install\n### Linux\nRun apt."

    def test_headings_inside_fenced_code_are_text(self) -> None:
        text = "# Top\nSee:\n```\n# not a heading\n```\nEnd."
        [only] = chunks(text)
        assert only.headings == ("Top",) and "# not a heading" in only.text

    def test_closing_hashes_and_hashtags(self) -> None:
        got = chunks("## Setup ##\ntext\n#hashtag is not a heading\n")
        assert [c.headings for c in got] == [("Setup",)]

    def test_paragraphs_are_kept_whole_before_sentences(self) -> None:
        paragraph = " ".join(["The quick brown fox jumps over the lazy dog."] * 3)
        text = "\n\n".join([paragraph] * 6)
        got = chunks(text, max_tokens=2 * COUNT(paragraph) + 4)
        assert all(set(c.text.split("\n\n")) == {paragraph} for c in got)  # whole paragraphs only
        assert len(got) == 3

    def test_a_long_sentence_is_cut_between_words(self) -> None:
        text = " ".join(f"w{i}" for i in range(400))
        got = chunks(text, max_tokens=32)
        assert len(got) > 5 and all(c.tokens <= 32 for c in got)
        assert all(re.fullmatch(r"w\d+( w\d+)*", c.text) for c in got)

    def test_only_a_word_longer_than_the_budget_is_cut_inside(self) -> None:
        text = "short words " + "x" * 2000 + " tail"
        got = chunks(text, max_tokens=16)
        assert all(c.tokens <= 16 for c in got)
        assert "".join(c.text for c in got if set(c.text) == {"x"}).count("x") <= 2000

    def test_overlap_repeats_the_end_of_the_previous_chunk(self) -> None:
        text = " ".join(f"word{i}." for i in range(200))
        got = chunks(text, max_tokens=40, overlap=10)
        for before, after in zip(got, got[1:]):
            assert after.start < before.end and COUNT(text[after.start : before.end]) <= 10

    def test_bad_budgets_are_refused(self) -> None:
        with pytest.raises(ValueError):
            chunks("x", max_tokens=MIN_CHUNK_TOKENS - 1)
        with pytest.raises(ValueError):
            chunks("x", max_tokens=32, overlap=32)
        with pytest.raises(ValueError):
            chunks("x", max_tokens=32, overlap=-1)


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéß0123456789,;'", min_size=1, max_size=12)
_sentence = st.lists(_word, min_size=1, max_size=25).map(lambda ws: " ".join(ws) + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=6).map(" ".join)
_block = st.one_of(
    _paragraph,
    _paragraph.map(lambda p: p.replace(". ", ".\n")),
    st.tuples(st.integers(1, 4), _word).map(lambda t: f"{'#' * t[0]} {t[1]}"),
    _paragraph.map(lambda p: f"```\n# {p}\n```"),
)
documents = st.lists(_block, min_size=1, max_size=12).map("\n\n".join)
budgets = st.integers(MIN_CHUNK_TOKENS + 8, 120).flatmap(lambda m: st.tuples(st.just(m), st.integers(0, m // 2)))


def _words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class TestProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(documents, budgets)
    def test_chunks_fit_cover_the_text_in_order_and_overlap_within_bounds(self, text: str, budget: tuple[int, int]) -> None:
        max_tokens, overlap = budget
        got = chunk_text(text, COUNT, max_tokens, overlap)
        for chunk in got:  # within the limit, and exactly a trimmed span of the text
            assert chunk.tokens == COUNT(chunk.text) <= max_tokens
            assert chunk.text == text[chunk.start : chunk.end] == chunk.text.strip() != ""
        for before, after in zip(got, got[1:]):  # in order, no gap, overlap bounded
            assert before.start < after.start and before.end < after.end
            assert not text[before.end : after.start].strip()
            if after.start < before.end:
                assert COUNT(text[after.start : before.end]) <= overlap
                assert after.headings == before.headings
        covered = [False] * len(text)
        for chunk in got:
            covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
        assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(documents, budgets)
    def test_no_word_is_cut_unless_it_alone_exceeds_the_limit(self, text: str, budget: tuple[int, int]) -> None:
        max_tokens, overlap = budget
        oversized = [(a, b) for a, b in _words(text) if COUNT(text[a:b]) > max_tokens]
        for chunk in chunk_text(text, COUNT, max_tokens, overlap):
            for edge in (chunk.start, chunk.end):
                inside_a_word = 0 < edge < len(text) and not text[edge - 1].isspace() and not text[edge].isspace()
                assert not inside_a_word or any(a < edge < b for a, b in oversized)

    @settings(max_examples=60, deadline=None)
    @given(st.text(min_size=0, max_size=600), st.integers(MIN_CHUNK_TOKENS, 64))
    def test_any_unicode_text_fits(self, text: str, max_tokens: int) -> None:
        got = chunk_text(text, COUNT, max_tokens, max_tokens // 4)
        assert all(c.tokens <= max_tokens and c.text == text[c.start : c.end] for c in got)
        assert all(c.start < d.start for c, d in zip(got, got[1:]))
