"""VectorIndex on Qdrant Edge: the Qdrant engine embedded in-process, one shard on local disk."""

# The bindings are synchronous and release the GIL, so every call runs in a worker thread.
# Every EdgeShard method takes &self in Rust and the shard synchronizes itself: reads, updates
# and optimize may overlap. A read/write gate keeps close and reset (which release or replace
# the shard) exclusive; updates are serialized so that the last upsert of an id wins.
#
# Edge never optimizes by itself: new points are searched by brute force until optimize()
# builds HNSW for segments above the indexing threshold. One owned worker thread runs it
# after every `optimize_every` written points, off the request path; close waits for it.

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as qe

from service.storage.records import SparseVector, VectorFilter, VectorHit, VectorPoint, VectorQuery

log = logging.getLogger(__name__)

T = TypeVar("T")

DENSE = "dense"
SPARSE = "sparse"
KEYWORD_FIELDS = ("user_id", "session_id", "agent_id", "type", "topic", "source", "document_id", "namespace")
FLOAT_FIELDS = ("event_time", "expires_at")


class _Gate:
    """Many shared holders or one exclusive holder; a waiting exclusive holder goes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate alongside other shared holders."""
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone."""
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class QdrantEdgeIndex:
    """Dense (cosine, HNSW) and sparse (BM25 via the IDF modifier) vectors in one Edge shard."""

    def __init__(self, path: Path, dimension: int, *, optimize_every: int = 5000) -> None:
        self._path = Path(path)
        self._dimension = dimension
        self._optimize_every = optimize_every
        self._gate = _Gate()
        self._updates = threading.Lock()
        self._optimizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-optimize")
        self._optimizing: Future[None] | None = None
        self._unoptimized = 0
        self._closed = False
        self._shard: qe.EdgeShard | None = None
        self._open_error: str | None = None
        self._open()

    async def ensure(self) -> None:
        """Create the payload indexes that are missing and index what a past run left plain."""
        await self._run(self._ensure)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id."""
        if points:
            await self._run(lambda shard: self._write(shard, _upsert(points), len(points)))

    async def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            await self._run(self._write, qe.UpdateOperation.delete_points(list(ids)), len(ids))

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        """Best hits first. Dense: cosine similarity. Sparse: BM25 (IDF applied by the engine)."""
        request = _request(query)
        if request is None:
            return []
        points = await self._run(lambda shard: shard.query(request))
        return [VectorHit(str(p.id), p.score, p.payload or {}) for p in points]

    async def count(self, tenant_id: str) -> int:
        """Exact number of points of a tenant."""
        request = qe.CountRequest(exact=True, filter=_tenant(tenant_id))
        return await self._run(lambda shard: shard.count(request))

    async def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete every point of one user of a tenant; how many there were."""
        where = _user(tenant_id, user_id)
        found = await self._run(lambda shard: shard.count(qe.CountRequest(exact=True, filter=where)))
        if found:
            await self._run(self._write, qe.UpdateOperation.delete_points_by_filter(where), found)
        return int(found)

    async def delete_document(self, tenant_id: str, document_id: str) -> None:
        """Delete every chunk point of one document."""
        where = qe.Filter(must=[_eq("tenant_id", tenant_id), _eq("document_id", document_id)])
        await self._run(self._write, qe.UpdateOperation.delete_points_by_filter(where))

    async def reset(self) -> None:
        """Drop every point and recreate the empty shard with its indexes."""
        await asyncio.to_thread(self._reset)

    async def ping(self) -> bool:
        """True when the shard answers."""
        try:
            await self._run(lambda shard: shard.info())
        except Exception:  # noqa: BLE001 - a health probe reports, it never raises
            return False
        return True

    async def close(self) -> None:
        """Wait for a running optimization, flush and release the shard."""
        await asyncio.to_thread(self._close)

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(shard, *args)`` in a worker thread under the shared gate."""
        return await asyncio.to_thread(self._shared_call, call, *args)

    def _shared_call(self, call: Callable[..., T], *args: Any) -> T:
        with self._gate.shared():
            return call(self._require(), *args)

    def _require(self) -> qe.EdgeShard:
        if self._shard is None:
            raise RuntimeError(self._open_error or "the Edge shard is closed")
        return self._shard

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={
                DENSE: qe.EdgeVectorParams(
                    size=self._dimension,
                    distance=qe.Distance.Cosine,
                    # Multitenant graph: links within each tenant only (payload_m), as Qdrant
                    # recommends when every search filters by an is_tenant field. Indexing
                    # leaves one core to the searches that run meanwhile.
                    hnsw_config=qe.HnswIndexConfig(
                        m=0,
                        ef_construct=100,
                        full_scan_threshold=10_000,
                        max_indexing_threads=max(1, _cpus() - 1),
                        payload_m=16,
                    ),
                )
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def _open(self) -> None:
        """Load the shard at the path, or create it when the directory holds none."""
        try:
            if (self._path / "edge_config.json").exists():
                self._shard = qe.EdgeShard.load(str(self._path), self._config())
            else:
                self._path.mkdir(parents=True, exist_ok=True)
                self._shard = qe.EdgeShard.create(str(self._path), self._config())
        except Exception as exc:  # noqa: BLE001 - kept so that reset() can still rebuild
            self._open_error = f"cannot open the Edge shard at {self._path} (reset rebuilds it): {exc}"
            log.error(self._open_error)
            return
        self._open_error = None

    def _ensure(self, shard: qe.EdgeShard) -> None:
        existing = shard.info().payload_schema
        for field, schema in _index_schemas():
            if field not in existing:
                self._write(shard, qe.UpdateOperation.create_field_index(field, schema))
        with self._updates:
            self._submit_optimize()

    def _write(self, shard: qe.EdgeShard, operation: qe.UpdateOperation, points: int = 0) -> None:
        """Apply one update; optimize in the background once enough points changed."""
        with self._updates:
            shard.update(operation)
            self._unoptimized += points
            if self._unoptimized >= self._optimize_every:
                self._submit_optimize()

    def _submit_optimize(self) -> None:
        """Start one background optimization unless one is running (caller holds _updates)."""
        if self._closed or (self._optimizing is not None and not self._optimizing.done()):
            return
        self._unoptimized = 0
        self._optimizing = self._optimizer.submit(self._optimize)

    def _optimize(self) -> None:
        try:
            self._shared_call(lambda shard: shard.optimize())
        except Exception:  # noqa: BLE001 - searches stay correct (brute force) without it
            log.exception("Edge shard optimization failed")

    def _wait_optimizer(self) -> None:
        if self._optimizing is not None:
            self._optimizing.result()

    def _reset(self) -> None:
        if self._closed:
            raise RuntimeError("the Edge index is closed")
        self._wait_optimizer()
        with self._gate.exclusive():
            if self._shard is not None:
                self._shard.close()
                self._shard = None
            shutil.rmtree(self._path, ignore_errors=True)
            self._open()
            self._ensure(self._require())

    def _close(self) -> None:
        with self._updates:
            self._closed = True
        self._wait_optimizer()
        self._optimizer.shutdown(wait=True)
        with self._gate.exclusive():
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _index_schemas() -> list[tuple[str, Any]]:
    """Payload indexes; only the tenant field shapes the HNSW graph, the rest serve filters."""
    schemas: list[tuple[str, Any]] = [("tenant_id", qe.KeywordIndexParams(is_tenant=True))]
    schemas += [(f, qe.KeywordIndexParams(enable_hnsw=False)) for f in KEYWORD_FIELDS]
    schemas += [(f, qe.FloatIndexParams(enable_hnsw=False)) for f in FLOAT_FIELDS]
    return schemas


def _sparse(vector: SparseVector) -> qe.SparseVector:
    # Checked here: the 0.9.0 engine panics on unequal lengths and may be left inconsistent.
    if len(vector.indices) != len(vector.values) or len(set(vector.indices)) != len(vector.indices):
        raise ValueError("a sparse vector needs unique indices, one value each")
    return qe.SparseVector(vector.indices, vector.values)


def _upsert(points: Sequence[VectorPoint]) -> qe.UpdateOperation:
    vectors = [{DENSE: p.dense, SPARSE: _sparse(p.sparse)} for p in points]
    return qe.UpdateOperation.upsert_points([qe.Point(p.id, v, p.payload) for p, v in zip(points, vectors)])


def _request(query: VectorQuery) -> qe.QueryRequest | None:
    """The engine query, or None when a sparse query has no terms."""
    if (query.dense is None) == (query.sparse is None):
        raise ValueError("a vector query sets exactly one of dense and sparse")
    params: qe.SearchParams | None = None
    if query.dense is not None:
        nearest = qe.Query.Nearest(query.dense, using=DENSE)
    elif query.sparse is not None and query.sparse.indices:
        nearest = qe.Query.Nearest(_sparse(query.sparse), using=SPARSE)
        # IDF statistics over the tenant's own points, not over every tenant's.
        params = qe.SearchParams(idf=qe.IdfParams(corpus=_tenant(query.filter.tenant_id)))
    else:
        return None
    return qe.QueryRequest(
        limit=query.limit,
        query=nearest,
        filter=_filter(query.filter),
        params=params,
        with_payload=True,
        with_vector=False,
    )


def _eq(key: str, value: str | int | float | bool) -> qe.FieldCondition:
    if isinstance(value, bool):
        # qdrant-edge-py 0.9.0 reads a Python bool in MatchValue as the integer 0/1, which
        # never equals a stored JSON boolean; numpy.bool_ is converted as a real boolean.
        return qe.FieldCondition(key, match=qe.MatchValue(np.bool_(value)))
    if isinstance(value, float):
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=value, lte=value))
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def _tenant(tenant_id: str) -> qe.Filter:
    return qe.Filter(must=[_eq("tenant_id", tenant_id)])


def _user(tenant_id: str, user_id: str) -> qe.Filter:
    return qe.Filter(must=[_eq("tenant_id", tenant_id), _eq("user_id", user_id)])


def _filter(f: VectorFilter) -> qe.Filter:
    """The VectorFilter as an engine filter (evaluated inside the engine)."""
    must: list[Any] = [_eq("tenant_id", f.tenant_id)]
    must_not: list[Any] = []
    if f.source == "document":
        must.append(_eq("source", "document"))
        owners = [_eq("user_id", f.user_id)] if f.user_id is not None else []
        if f.namespaces:
            owners.append(qe.FieldCondition("namespace", match=qe.MatchAny(list(f.namespaces))))
        if owners:
            must.append(qe.Filter(should=owners))
    else:  # memory points carry no source field
        must_not.append(_eq("source", "document"))
        if f.user_id is not None:
            must.append(_eq("user_id", f.user_id))
    for key, value in (("session_id", f.session_id), ("agent_id", f.agent_id)):
        if value is not None:
            must.append(_eq(key, value))
    if f.types is not None:
        must.append(qe.FieldCondition("type", match=qe.MatchAny(list(f.types))))
    if f.topics is not None:
        must.append(qe.FieldCondition("topic", match=qe.MatchAny(list(f.topics))))
    for key, value in (f.metadata or {}).items():
        must.append(_eq(f"metadata.{key}", value))
    if f.after is not None or f.before is not None:
        must.append(qe.FieldCondition("event_time", range=qe.RangeFloat(gte=f.after, lt=f.before)))
    if f.alive_at is not None:
        expiry = qe.FieldCondition("expires_at", range=qe.RangeFloat(gt=f.alive_at))
        must.append(qe.Filter(should=[qe.IsEmptyCondition("expires_at"), expiry]))
    return qe.Filter(must=must, must_not=must_not or None)
