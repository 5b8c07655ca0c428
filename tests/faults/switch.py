"""A test-only fault switch for a real vector engine: when down, every call raises what
qdrant-client raises for an unreachable server (and the probe answers False, as the adapters do)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from qdrant_client.http.exceptions import ResponseHandlingException

from service.lifespan import Backends, open_backends
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage.ports import Embedder, VectorIndex
from service.storage.records import VectorHit, VectorPoint, VectorQuery
from service.storage.vectors.guard import GuardedIndex


class FaultSwitch:
    """Wraps a real VectorIndex; ``down = True`` makes it unreachable until set back."""

    def __init__(self, engine: VectorIndex) -> None:
        self.engine = engine
        self.down = False
        self.refused: Counter[str] = Counter()  # calls refused while down, by method

    def _check(self, method: str) -> None:
        """Raise as qdrant-client does (its wrapper, or the bare httpx error, in turn) when down."""
        if self.down:
            self.refused[method] += 1
            refused = httpx.ConnectError("[Errno 111] Connection refused")
            raise ResponseHandlingException(refused) if self.refused.total() % 2 else refused

    async def ensure(self) -> None:
        self._check("ensure")
        await self.engine.ensure()

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        self._check("upsert")
        await self.engine.upsert(points)

    async def delete(self, ids: Sequence[str]) -> None:
        self._check("delete")
        await self.engine.delete(ids)

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        self._check("search")
        return await self.engine.search(query)

    async def count(self, tenant_id: str) -> int:
        self._check("count")
        return await self.engine.count(tenant_id)

    async def erase_user(self, tenant_id: str, user_id: str) -> int:
        self._check("erase_user")
        return await self.engine.erase_user(tenant_id, user_id)

    async def delete_document(self, tenant_id: str, document_id: str) -> None:
        self._check("delete_document")
        await self.engine.delete_document(tenant_id, document_id)

    async def reset(self) -> None:
        self._check("reset")
        await self.engine.reset()

    async def ping(self) -> bool:
        return not self.down and await self.engine.ping()

    async def close(self) -> None:
        await self.engine.close()


@asynccontextmanager
async def switched_backends(
    settings: Settings, metrics: Metrics, *, embedder: Embedder, switch: list[FaultSwitch]
) -> AsyncIterator[Backends]:
    """The settings' real backends with a fault switch between the guard and the engine
    (appended to ``switch`` for the test to flip)."""
    async with open_backends(settings, metrics, embedder=embedder) as backends:
        guarded = backends.vectors
        assert isinstance(guarded, GuardedIndex)
        switch.append(FaultSwitch(guarded.inner))
        backends.vectors = GuardedIndex(switch[-1], guarded.where)
        yield backends
