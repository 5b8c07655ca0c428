"""A VectorIndex whose connection failures leave as ``VectorIndexUnreachable``, whatever the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

import httpx
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from service.storage.errors import VectorIndexUnreachable
from service.storage.ports import VectorIndex
from service.storage.records import VectorHit, VectorPoint, VectorQuery

T = TypeVar("T")

#: What qdrant-client raises when the server is down, unreachable or too slow.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    ResponseHandlingException,
    ConnectionError,
    TimeoutError,
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine did not answer (rather than that the request was wrong)."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in (502, 503, 504)
    return isinstance(exc, CONNECTION_ERRORS)


class GuardedIndex:
    """Delegates to ``inner``; a failure to reach it is raised as ``VectorIndexUnreachable``."""

    def __init__(self, inner: VectorIndex, where: str) -> None:
        self.inner = inner
        self.where = where

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except Exception as exc:
            if unreachable(exc):
                raise VectorIndexUnreachable(f"the vector index at {self.where} did not answer ({exc!r})") from exc
            raise

    async def ensure(self) -> None:
        await self._call(self.inner.ensure())

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        await self._call(self.inner.upsert(points))

    async def delete(self, ids: Sequence[str]) -> None:
        await self._call(self.inner.delete(ids))

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        return await self._call(self.inner.search(query))

    async def count(self, tenant_id: str) -> int:
        return await self._call(self.inner.count(tenant_id))

    async def erase_user(self, tenant_id: str, user_id: str) -> int:
        return await self._call(self.inner.erase_user(tenant_id, user_id))

    async def delete_document(self, tenant_id: str, document_id: str) -> None:
        await self._call(self.inner.delete_document(tenant_id, document_id))

    async def reset(self) -> None:
        await self._call(self.inner.reset())

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
