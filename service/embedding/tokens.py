"""Token counting with bpe-openai, an offline tokenizer compatible with OpenAI's tiktoken."""

from __future__ import annotations

from functools import lru_cache

import bpe_openai

__all__ = ["BpeTokenCounter"]

# bpe-openai refuses a single encode of 1,000,000 characters or 200,000 tokens; longer texts
# are counted in slices (a slice boundary may split a token, so the count can be off by one
# per slice, which is fine for budgeting).
_SLICE_CHARS = 40_000
#: Counts of texts up to this long are kept (most recently used first): a context call counts
#: the same memory lines call after call.
_CACHED_CHARS = 4_000
_CACHED_TEXTS = 65_536


class BpeTokenCounter:
    """A ``TokenCounter``: the number of BPE tokens of a text, special-token strings as text."""

    def __init__(self, encoding: str = "o200k_base") -> None:
        valid = list(bpe_openai.list_encoding_names())
        if encoding not in valid:
            raise ValueError(f"unknown tokenizer encoding {encoding!r}; valid encodings: {', '.join(valid)}")
        self._name = encoding
        self._encoding = bpe_openai.get_encoding(encoding)
        self._short = lru_cache(maxsize=_CACHED_TEXTS)(self._tokens)

    @property
    def encoding(self) -> str:
        return self._name

    def count(self, text: str) -> int:
        """Tokens in ``text``; user text that spells ``<|endoftext|>`` counts as ordinary text."""
        if len(text) <= _CACHED_CHARS:
            return self._short(text)
        return sum(self._tokens(text[start : start + _SLICE_CHARS]) for start in range(0, len(text), _SLICE_CHARS))

    def _tokens(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))
