"""BM25 sparse vectors for the vector engine.

Documents carry the BM25 term-frequency part, ``tf * (k1 + 1) / (tf + k1 * (1 - b + b *
dl / avgdl))``; queries carry one weight per unique term. The engine multiplies each matching
term by its IDF, ``ln(1 + (N - n + 0.5) / (n + 0.5))`` over the collection, so the dot product
of a query and a document is the Okapi BM25 score.

``avgdl`` is a constructor parameter rather than a running corpus statistic: a vector is
written once and never re-encoded when the corpus grows, so the length normalisation must not
drift. Memories are chat turns of a few dozen words; the default fits them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from service.embedding.text import term_id, tokenize
from service.storage.records import SparseVector

__all__ = ["Bm25Encoder"]


class Bm25Encoder:
    """Implements :class:`service.storage.ports.SparseEncoder` with Okapi BM25 weights."""

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.5,
        avgdl: float = 12.0,
        tokenizer: Callable[[str], list[str]] = tokenize,
    ) -> None:
        if k1 < 0:
            raise ValueError("k1 must be >= 0")
        if not 0.0 <= b <= 1.0:
            raise ValueError("b must be within [0, 1]")
        if avgdl <= 0:
            raise ValueError("avgdl must be > 0")
        self.k1 = k1
        self.b = b
        self.avgdl = avgdl
        self._tokenize = tokenizer

    def document_weights(self, text: str) -> dict[str, float]:
        """Saturated term frequency per token of a document (readable form of the vector)."""
        counts = Counter(self._tokenize(text))
        dl = sum(counts.values())
        norm = self.k1 * (1.0 - self.b + self.b * dl / self.avgdl)
        return {tok: tf * (self.k1 + 1.0) / (tf + norm) for tok, tf in counts.items()}

    def query_weights(self, text: str) -> dict[str, float]:
        """Weight 1.0 per unique query token."""
        return dict.fromkeys(self._tokenize(text), 1.0)

    def encode_document(self, text: str) -> SparseVector:
        return _to_vector(self.document_weights(text))

    def encode_query(self, text: str) -> SparseVector:
        return _to_vector(self.query_weights(text))


def _to_vector(weights: dict[str, float]) -> SparseVector:
    # Distinct tokens could share a 31-bit id; add their weights rather than send a duplicate
    # index, which engines reject. Indices are sorted for a canonical form.
    merged: dict[int, float] = {}
    for token, weight in weights.items():
        idx = term_id(token)
        merged[idx] = merged.get(idx, 0.0) + weight
    indices = sorted(merged)
    return SparseVector(indices=indices, values=[merged[i] for i in indices])
