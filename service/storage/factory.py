"""Settings to concrete backends: an explicit choice per backend, nothing magic."""

from __future__ import annotations

from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from service.settings import Settings
from service.storage.buffer.memory import InProcessBuffer
from service.storage.buffer.redis import RedisBuffer
from service.storage.ports import MessageBuffer, VectorIndex
from service.storage.sql.database import SqlDatabase, create_engine
from service.storage.vectors.qdrant_edge import QdrantEdgeIndex
from service.storage.vectors.qdrant_server import QdrantServerIndex

#: ``MEMORY_QDRANT_URL`` value for qdrant-client's in-process local mode (tests, experiments).
QDRANT_LOCAL = ":memory:"


def open_database(settings: Settings) -> SqlDatabase:
    return SqlDatabase(create_engine(settings.sql_url, settings.database_pool_size))


def open_buffer(settings: Settings) -> MessageBuffer:
    if settings.redis_url:
        client = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        return RedisBuffer(client, settings.buffer_max_messages, settings.buffer_ttl_seconds)
    return InProcessBuffer(settings.buffer_max_messages, settings.buffer_ttl_seconds)


def _qdrant_client(settings: Settings) -> AsyncQdrantClient:
    if settings.qdrant_url == QDRANT_LOCAL:
        return AsyncQdrantClient(location=QDRANT_LOCAL)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return AsyncQdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=10)


async def open_vectors(settings: Settings, dimension: int, fresh: bool = False) -> VectorIndex:
    """Qdrant server when ``MEMORY_QDRANT_URL`` is set, else the embedded Qdrant Edge shard.

    ``fresh`` drops whatever the index held and recreates it (for a rebuild, e.g. after the
    embedding model, and so the vector size, changed).
    """
    index: VectorIndex
    if settings.qdrant_url:
        index = QdrantServerIndex(_qdrant_client(settings), settings.qdrant_collection, dimension)
    else:
        index = QdrantEdgeIndex(settings.edge_path, dimension)
    await (index.reset() if fresh else index.ensure())
    return index
