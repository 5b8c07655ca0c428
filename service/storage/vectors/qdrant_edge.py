"""VectorIndex on Qdrant Edge: the Qdrant engine embedded in-process, one shard on local disk."""

# The bindings are synchronous and hold the GIL while they run (measured on 0.9.0: Python in
# other threads stalls for the length of a call), so every call runs in a worker thread and
# every call must be short. Every EdgeShard method takes &self in Rust and the shard
# synchronizes itself. A read/write gate keeps close and reset (which release or replace the
# shard) exclusive; updates are serialized so that the last upsert of an id wins.
#
# No HNSW graph. Every query filters to one user (or one user's and some namespaces' chunks),
# and the user_id payload index takes the engine straight to those points, which it scores
# exactly: at 1,000,000 points of 10,000 users a filtered dense query took 0.1-0.2 ms with or
# without a graph. A graph only cost: building it (the per-tenant payload_m graph) took 144 s for
# 100,000 points, GIL held, stalling every request. optimize() (merging segments, dropping
# deleted points) also holds the GIL, 7 s at 300,000 points, so it runs once when the shard is
# opened (`ensure`, before the service serves), never while the service is serving.
#
# One search thread. By default the shard runs each query's per-segment reads on a pool of one
# thread per CPU; with a query touching one user's few hundred points the hand-offs cost more
# than they save (measured, 3,000 points, a filtered top-200 dense query: 0.43 ms of CPU
# without payloads on the pool, 0.15 ms on one thread; a sparse one 0.33 and 0.07 ms), and the
# pool's threads compete with the event loop for the same cores.

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
    """Dense (cosine, exact under the filter) and sparse (BM25 via the IDF modifier) vectors in
    one Edge shard."""

    def __init__(self, path: Path, dimension: int) -> None:
        self._path = Path(path)
        self._dimension = dimension
        self._gate = _Gate()
        self._updates = threading.Lock()
        self._closed = False
        self._shard: qe.EdgeShard | None = None
        self._open_error: str | None = None
        self._open()

    async def ensure(self) -> None:
        """Create the payload indexes that are missing and optimize what a past run wrote."""
        await self._run(self._ensure)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id."""
        if points:
            await self._run(self._write, _upsert(points))

    async def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            await self._run(self._write, qe.UpdateOperation.delete_points(list(ids)))

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        """Best hits first. Dense: cosine similarity. Sparse: BM25 (IDF applied by the engine)."""
        points = await self._run(self._query, query)
        if points is None:
            return []
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
            await self._run(self._write, qe.UpdateOperation.delete_points_by_filter(where))
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
        """Flush and release the shard."""
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
                    # No graph at all (m and payload_m 0): see the note at the top.
                    hnsw_config=qe.HnswIndexConfig(
                        m=0,
                        ef_construct=100,
                        full_scan_threshold=10_000,
                        max_indexing_threads=1,
                        payload_m=0,
                    ),
                )
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            max_search_threads=1,
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
        started = time.perf_counter()
        with self._updates:
            shard.optimize()
        log.info("Edge shard at %s optimized in %.1f s", self._path, time.perf_counter() - started)

    def _write(self, shard: qe.EdgeShard, operation: qe.UpdateOperation) -> None:
        with self._updates:
            shard.update(operation)

    def _query(self, shard: qe.EdgeShard, query: VectorQuery) -> list[Any] | None:
        whole = query.sparse is not None and _only_tenant(shard, query.filter.tenant_id)  # IDF is the sparse side's
        request = _request(query, whole_shard_is_tenant=whole)
        return None if request is None else shard.query(request)

    def _reset(self) -> None:
        if self._closed:
            raise RuntimeError("the Edge index is closed")
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
        with self._gate.exclusive():
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None


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


def _only_tenant(shard: qe.EdgeShard, tenant_id: str) -> bool:
    """Whether every point of the shard is the tenant's (a facet of the tenant index: well under
    a millisecond at 1,000,000 points)."""
    hits = shard.facet(qe.FacetRequest(key="tenant_id", limit=2, exact=False)).hits
    return len(hits) == 1 and hits[0].value == tenant_id


def _request(query: VectorQuery, *, whole_shard_is_tenant: bool = False) -> qe.QueryRequest | None:
    """The engine query, or None when a sparse query has no terms.

    BM25's IDF counts the tenant's points only. Counting them under a tenant filter costs the
    query 33 ms at 1,000,000 points; when the shard holds no other tenant the whole shard's
    statistics are the same numbers, at 0.2 ms, so the filter is left out then."""
    if (query.dense is None) == (query.sparse is None):
        raise ValueError("a vector query sets exactly one of dense and sparse")
    params: qe.SearchParams | None = None
    if query.dense is not None:
        nearest = qe.Query.Nearest(query.dense, using=DENSE)
    elif query.sparse is not None and query.sparse.indices:
        nearest = qe.Query.Nearest(_sparse(query.sparse), using=SPARSE)
        # IDF statistics over the tenant's own points, not over every tenant's.
        if not whole_shard_is_tenant:
            params = qe.SearchParams(idf=qe.IdfParams(corpus=_tenant(query.filter.tenant_id)))
    else:
        return None
    return qe.QueryRequest(
        limit=query.limit,
        query=nearest,
        filter=_filter(query.filter),
        params=params,
        with_payload=True if query.payload_fields is None else list(query.payload_fields),
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
