"""BpeTokenCounter: token counts from bpe-openai, matching tiktoken's encodings."""

from __future__ import annotations

import bpe_openai
import pytest

from service.embedding.tokens import BpeTokenCounter
from service.storage.ports import TokenCounter


@pytest.fixture(scope="module")
def counter() -> BpeTokenCounter:
    return BpeTokenCounter()


def test_satisfies_the_token_counter_port(counter: BpeTokenCounter) -> None:
    port: TokenCounter = counter
    assert port.count("hello") == 1


def test_default_encoding_is_o200k_base(counter: BpeTokenCounter) -> None:
    assert counter.encoding == "o200k_base"


def test_empty_text_has_no_tokens(counter: BpeTokenCounter) -> None:
    assert counter.count("") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello world", 2),  # tiktoken o200k_base: [24912, 2375]
        ("Hello, world!", 4),
        ("The quick brown fox jumps over the lazy dog.", 10),
    ],
)
def test_counts_match_tiktoken(counter: BpeTokenCounter, text: str, expected: int) -> None:
    assert counter.count(text) == expected


def test_count_equals_the_encoding_length(counter: BpeTokenCounter) -> None:
    text = "Memory service: remember that Ada prefers tea 🍵, not coffee. ¿Qué tal? 日本語も大丈夫。"
    assert counter.count(text) == len(bpe_openai.get_encoding("o200k_base").encode(text))


def test_more_text_means_more_tokens(counter: BpeTokenCounter) -> None:
    assert counter.count("word " * 100) > counter.count("word " * 10) > 0


def test_special_token_text_is_counted_as_ordinary_text(counter: BpeTokenCounter) -> None:
    # A user may type "<|endoftext|>"; it must be counted, not rejected or collapsed to one token.
    assert counter.count("<|endoftext|>") > 1


def test_very_long_text_is_counted_in_slices(counter: BpeTokenCounter) -> None:
    # 1.35 million characters: one bpe-openai encode call would refuse it.
    thousand = counter.count("lorem ipsum dolor sit amet " * 1_000)
    assert counter.count("lorem ipsum dolor sit amet " * 50_000) == pytest.approx(thousand * 50, rel=0.001)


def test_other_encodings_are_selectable() -> None:
    cl100k = BpeTokenCounter("cl100k_base")
    assert cl100k.encoding == "cl100k_base"
    assert cl100k.count("hello world") == 2


def test_unknown_encoding_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer encoding 'nope'") as info:
        BpeTokenCounter("nope")
    for name in ("o200k_base", "cl100k_base"):
        assert name in str(info.value)
