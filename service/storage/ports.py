"""Small protocols the domain talks to; storage/* implements them.

Each port is a handful of methods so that it is easy to implement twice (a server backend and
an embedded one) and to fake once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from service.storage.records import BufferedMessage, SparseVector, VectorHit, VectorPoint, VectorQuery


class MessageBuffer(Protocol):
    """The short-term buffer: a capped, expiring list of recent messages per session.

    It is a cache of the episodic record in SQL. ``exists`` tells a lost buffer (never
    written, flushed, expired) from an empty one so the domain can rebuild it.
    """

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None: ...

    async def replace(self, key: str, messages: Sequence[BufferedMessage]) -> None: ...

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        """The newest ``limit`` messages, oldest first; None when the buffer does not exist."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class VectorIndex(Protocol):
    """Dense and sparse vectors of memories, with payload filters evaluated in the engine."""

    async def ensure(self) -> None:
        """Create the collection and its payload indexes if they are missing."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        """Best hits first. Dense: cosine similarity. Sparse: BM25 (IDF applied by the engine)."""
        ...

    async def count(self, tenant_id: str) -> int: ...

    async def reset(self) -> None:
        """Drop every point and recreate the empty collection (used by reindex)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class Embedder(Protocol):
    """Text to dense vectors (unit length, so dot product equals cosine)."""

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def close(self) -> None: ...


class SparseEncoder(Protocol):
    """Text to BM25-style sparse vectors: documents carry saturated term frequencies, queries
    carry unit weights; the vector engine multiplies by IDF."""

    def encode_document(self, text: str) -> SparseVector: ...

    def encode_query(self, text: str) -> SparseVector: ...


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...
