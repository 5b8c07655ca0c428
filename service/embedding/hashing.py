"""A deterministic, model-free ``Embedder`` for fast unit tests of logic that needs vectors.

Feature hashing: lowercase word unigrams and character trigrams (of each word padded with
spaces) are hashed with BLAKE2b into ``dimension`` signed buckets, then L2-normalized. Equal
texts give equal vectors in every process; texts that share words or word pieces score a
higher cosine than unrelated ones. It knows nothing of meaning (no synonyms).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+")
_TRIGRAM_WEIGHT = 0.5
_EMPTY_FEATURE = "\x00empty"


class HashingEmbedder:
    """Feature-hashing embedder: deterministic, unit-length vectors of ``dimension`` floats."""

    def __init__(self, dimension: int = 384) -> None:
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        return [self.vector(text) for text in texts]

    async def embed_query(self, texts: Sequence[str]) -> list[list[float]]:
        """The same vectors (there is no queue to jump)."""
        return await self.embed(texts)

    async def close(self) -> None:
        """Nothing to release."""

    def vector(self, text: str) -> list[float]:
        """The (synchronous) vector of one text."""
        buckets = [0.0] * self._dimension
        for feature, weight in _features(text):
            index, sign = self._bucket(feature)
            buckets[index] += sign * weight
        norm = math.sqrt(sum(v * v for v in buckets))
        if norm == 0.0:  # features cancelled out exactly; fall back to the fixed empty vector
            index, sign = self._bucket(_EMPTY_FEATURE)
            buckets[index] = sign
            return buckets
        return [v / norm for v in buckets]

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
        return (digest >> 1) % self._dimension, (1.0 if digest & 1 else -1.0)


def _features(text: str) -> Iterator[tuple[str, float]]:
    """Weighted features of a text: ``w:<word>`` unigrams and ``c:<abc>`` trigrams."""
    words = _WORD.findall(text.lower())
    if not words:  # punctuation or whitespace only: the stripped text is the one feature
        stripped = text.strip().lower()
        yield (f"r:{stripped}" if stripped else _EMPTY_FEATURE), 1.0
        return
    for word in words:
        yield f"w:{word}", 1.0
        padded = f" {word} "
        for start in range(len(padded) - 2):
            yield f"c:{padded[start:start + 3]}", _TRIGRAM_WEIGHT
