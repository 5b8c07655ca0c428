"""VectorIndex on a Qdrant server (or qdrant-client's in-process local mode) via AsyncQdrantClient."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from service.storage.records import SparseVector, VectorFilter, VectorHit, VectorPoint, VectorQuery

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "sparse"
KEYWORD_FIELDS = ("user_id", "session_id", "agent_id", "type", "topic", "source", "document_id", "namespace")
FLOAT_FIELDS = ("event_time", "expires_at")
PING_TIMEOUT_S = 5.0


class QdrantServerIndex:
    """Dense (cosine, HNSW) and sparse (BM25 via the IDF modifier) vectors in one collection."""

    def __init__(self, client: AsyncQdrantClient, collection: str, dimension: int) -> None:
        self._client = client
        self._collection = collection
        self._dimension = dimension

    async def ensure(self) -> None:
        """Create the collection and its payload indexes if they are missing."""
        if not await self._client.collection_exists(self._collection):
            await self._create_collection()
        info = await self._client.get_collection(self._collection)
        self._check_dimension(info)
        for field, schema in _index_schemas():
            if field not in info.payload_schema:
                await self._client.create_payload_index(self._collection, field, schema, wait=True)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id."""
        if points:
            await self._client.upsert(self._collection, [_point(p) for p in points], wait=True)

    async def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            selector = models.PointIdsList(points=list(ids))
            await self._client.delete(self._collection, points_selector=selector, wait=True)

    async def search(self, query: VectorQuery) -> list[VectorHit]:
        """Best hits first. Dense: cosine similarity. Sparse: BM25 (IDF applied by the engine)."""
        if (query.dense is None) == (query.sparse is None):
            raise ValueError("a vector query sets exactly one of dense and sparse")
        params: models.SearchParams | None = None
        if query.dense is not None:
            vector: list[float] | models.SparseVector = query.dense
            using = DENSE
        elif query.sparse is not None and query.sparse.indices:
            vector, using = _sparse(query.sparse), SPARSE
            # IDF statistics over the tenant's own points, not over every tenant's.
            params = models.SearchParams(idf=models.IdfCorpusParams(corpus=_tenant(query.filter.tenant_id)))
        else:
            return []
        response = await self._client.query_points(
            self._collection,
            query=vector,
            using=using,
            query_filter=_filter(query.filter),
            search_params=params,
            limit=query.limit,
            with_payload=True if query.payload_fields is None else list(query.payload_fields),
            with_vectors=False,
        )
        return [VectorHit(str(p.id), p.score, p.payload or {}) for p in response.points]

    async def count(self, tenant_id: str) -> int:
        """Exact number of points of a tenant."""
        result = await self._client.count(self._collection, count_filter=_tenant(tenant_id), exact=True)
        return result.count

    async def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete every point of one user of a tenant; how many there were."""
        where = _user(tenant_id, user_id)
        found = (await self._client.count(self._collection, count_filter=where, exact=True)).count
        if found:
            selector = models.FilterSelector(filter=where)
            await self._client.delete(self._collection, points_selector=selector, wait=True)
        return found

    async def delete_document(self, tenant_id: str, document_id: str) -> None:
        """Delete every chunk point of one document."""
        where = models.Filter(must=[_eq("tenant_id", tenant_id), _eq("document_id", document_id)])
        await self._client.delete(self._collection, points_selector=models.FilterSelector(filter=where), wait=True)

    async def reset(self) -> None:
        """Drop the collection and recreate it empty with its indexes."""
        await self._client.delete_collection(self._collection)
        await self.ensure()

    async def ping(self) -> bool:
        """True when the engine answers within PING_TIMEOUT_S."""
        try:
            await asyncio.wait_for(self._client.get_collections(), PING_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a health probe reports, it never raises
            return False
        return True

    async def close(self) -> None:
        """Close the client (closing twice is harmless)."""
        await self._client.close()

    async def _create_collection(self) -> None:
        # Multitenant graph: links within each tenant only (payload_m), as Qdrant recommends
        # when every search filters by an is_tenant field.
        hnsw = models.HnswConfigDiff(m=0, payload_m=16)
        dense = models.VectorParams(size=self._dimension, distance=models.Distance.COSINE, hnsw_config=hnsw)
        sparse = models.SparseVectorParams(modifier=models.Modifier.IDF)
        await self._client.create_collection(
            self._collection, vectors_config={DENSE: dense}, sparse_vectors_config={SPARSE: sparse}
        )

    def _check_dimension(self, info: models.CollectionInfo) -> None:
        vectors = info.config.params.vectors
        size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        if size != self._dimension:
            raise RuntimeError(
                f"collection {self._collection!r} holds dense vectors of size {size}, "
                f"the embedder makes {self._dimension}: reset (reindex) the vector index"
            )


def _index_schemas() -> list[tuple[str, Any]]:
    """Payload indexes; only the tenant field shapes the HNSW graph, the rest serve filters."""
    keyword = models.KeywordIndexType.KEYWORD
    schemas: list[tuple[str, Any]] = [("tenant_id", models.KeywordIndexParams(type=keyword, is_tenant=True))]
    schemas += [(f, models.KeywordIndexParams(type=keyword, enable_hnsw=False)) for f in KEYWORD_FIELDS]
    float_type = models.FloatIndexType.FLOAT
    schemas += [(f, models.FloatIndexParams(type=float_type, enable_hnsw=False)) for f in FLOAT_FIELDS]
    return schemas


def _sparse(vector: SparseVector) -> models.SparseVector:
    if len(vector.indices) != len(vector.values) or len(set(vector.indices)) != len(vector.indices):
        raise ValueError("a sparse vector needs unique indices, one value each")
    return models.SparseVector(indices=vector.indices, values=vector.values)


def _point(point: VectorPoint) -> models.PointStruct:
    vector: dict[str, Any] = {DENSE: point.dense, SPARSE: _sparse(point.sparse)}
    return models.PointStruct(id=point.id, vector=vector, payload=point.payload)


def _eq(key: str, value: str | int | float | bool) -> models.FieldCondition:
    if isinstance(value, float):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _tenant(tenant_id: str) -> models.Filter:
    return models.Filter(must=[_eq("tenant_id", tenant_id)])


def _user(tenant_id: str, user_id: str) -> models.Filter:
    return models.Filter(must=[_eq("tenant_id", tenant_id), _eq("user_id", user_id)])


def _filter(f: VectorFilter) -> models.Filter:
    """The VectorFilter as an engine filter (evaluated inside the engine)."""
    must: list[Any] = [_eq("tenant_id", f.tenant_id)]
    must_not: list[Any] = []
    if f.source == "document":
        must.append(_eq("source", "document"))
        owners = [_eq("user_id", f.user_id)] if f.user_id is not None else []
        if f.namespaces:
            owners.append(models.FieldCondition(key="namespace", match=models.MatchAny(any=list(f.namespaces))))
        if owners:
            must.append(models.Filter(should=owners))
    else:  # memory points carry no source field
        must_not.append(_eq("source", "document"))
        if f.user_id is not None:
            must.append(_eq("user_id", f.user_id))
    for key, value in (("session_id", f.session_id), ("agent_id", f.agent_id)):
        if value is not None:
            must.append(_eq(key, value))
    if f.types is not None:
        must.append(models.FieldCondition(key="type", match=models.MatchAny(any=list(f.types))))
    if f.topics is not None:
        must.append(models.FieldCondition(key="topic", match=models.MatchAny(any=list(f.topics))))
    for key, value in (f.metadata or {}).items():
        must.append(_eq(f"metadata.{key}", value))
    if f.after is not None or f.before is not None:
        must.append(models.FieldCondition(key="event_time", range=models.Range(gte=f.after, lt=f.before)))
    if f.alive_at is not None:
        missing = models.IsEmptyCondition(is_empty=models.PayloadField(key="expires_at"))
        alive = models.FieldCondition(key="expires_at", range=models.Range(gt=f.alive_at))
        must.append(models.Filter(should=[missing, alive]))
    return models.Filter(must=must, must_not=must_not or None)
