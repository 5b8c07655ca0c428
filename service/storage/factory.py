"""Settings to concrete backends: an explicit choice per backend, nothing magic."""

from __future__ import annotations

import logging

from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from service.settings import Settings
from service.storage.buffer.memory import InProcessBuffer
from service.storage.buffer.mending import MendingBuffer
from service.storage.buffer.redis import RedisBuffer
from service.storage.errors import VectorIndexUnreachable
from service.storage.ports import MessageBuffer, VectorIndex
from service.storage.sql.database import SqlDatabase, create_engine
from service.storage.vectors.guard import GuardedIndex
from service.storage.vectors.qdrant_edge import QdrantEdgeIndex
from service.storage.vectors.qdrant_server import QdrantServerIndex

log = logging.getLogger(__name__)

#: ``MEMORY_QDRANT_URL`` value for qdrant-client's in-process local mode (tests, experiments).
QDRANT_LOCAL = ":memory:"

#: Redis connect and command timeout: a buffer call never waits longer (it degrades to SQL).
REDIS_TIMEOUT_SECONDS = 1.0
#: After a Redis failure, buffer calls go straight to SQL for this long.
REDIS_COOLDOWN_SECONDS = 1.0
#: Qdrant request timeout.
QDRANT_TIMEOUT_SECONDS = 5


def open_database(settings: Settings) -> SqlDatabase:
    return SqlDatabase(create_engine(settings.sql_url, settings.database_pool_size, settings.database_connect_timeout_seconds))


def _redis_client(url: str) -> Redis:
    # One immediate retry on a dropped connection (a restarted Redis), none on a timeout.
    retry = Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,))
    return Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, retry=retry
    )


def open_buffer(settings: Settings) -> MessageBuffer:
    if settings.redis_url:
        redis = RedisBuffer(_redis_client(settings.redis_url), settings.buffer_max_messages, settings.buffer_ttl_seconds)
        return MendingBuffer(redis, (RedisError, OSError), cooldown=REDIS_COOLDOWN_SECONDS)
    return InProcessBuffer(settings.buffer_max_messages, settings.buffer_ttl_seconds)


def _qdrant_client(settings: Settings) -> AsyncQdrantClient:
    if settings.qdrant_url == QDRANT_LOCAL:
        return AsyncQdrantClient(location=QDRANT_LOCAL)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return AsyncQdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=QDRANT_TIMEOUT_SECONDS)


async def open_vectors(settings: Settings, dimension: int, fresh: bool = False) -> VectorIndex:
    """Qdrant server when ``MEMORY_QDRANT_URL`` is set, else the embedded Qdrant Edge shard.

    ``fresh`` drops whatever the index held and recreates it (for a rebuild, e.g. after the
    embedding model, and so the vector size, changed). A Qdrant server that does not answer
    here fails start-up (fail fast, with one clear log line): the collection cannot be checked.
    """
    engine: VectorIndex
    if settings.qdrant_url:
        engine = QdrantServerIndex(_qdrant_client(settings), settings.qdrant_collection, dimension)
        where = settings.qdrant_url
    else:
        engine = QdrantEdgeIndex(settings.edge_path, dimension)
        where = str(settings.edge_path)
    index = GuardedIndex(engine, where)
    try:
        await (index.reset() if fresh else index.ensure())
    except VectorIndexUnreachable:
        log.error("cannot start: the vector index at %s does not answer; start Qdrant or fix MEMORY_QDRANT_URL", where)
        await index.close()
        raise
    return index
