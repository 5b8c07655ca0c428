"""Settings to concrete backends: an explicit choice per backend, nothing magic."""

from __future__ import annotations

from redis.asyncio import Redis

from service.settings import Settings
from service.storage.buffer.memory import InProcessBuffer
from service.storage.buffer.redis import RedisBuffer
from service.storage.ports import MessageBuffer
from service.storage.sql.database import SqlDatabase, create_engine


def open_database(settings: Settings) -> SqlDatabase:
    return SqlDatabase(create_engine(settings.sql_url, settings.database_pool_size))


def open_buffer(settings: Settings) -> MessageBuffer:
    if settings.redis_url:
        client = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        return RedisBuffer(client, settings.buffer_max_messages, settings.buffer_ttl_seconds)
    return InProcessBuffer(settings.buffer_max_messages, settings.buffer_ttl_seconds)
