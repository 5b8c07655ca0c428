"""The Redis short-term buffer: one capped list per session, with an idle TTL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.storage.buffer import codec
from service.storage.records import BufferedMessage

_FILL_SECONDS = 30

# KEYS[1] list, KEYS[2] fill token; ARGV[1] cap, ARGV[2] ttl (0 = none), ARGV[3..] entries
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS[1] list, KEYS[2] fill token; ARGV[1] cap, ARGV[2] ttl, ARGV[3] token, ARGV[4..] entries
_INSTALL = """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
if #ARGV >= 4 then
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
  if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return 1
"""


class RedisBuffer:
    """Implements ``MessageBuffer`` on Redis lists; the append and fill are atomic Lua scripts."""

    def __init__(self, client: Redis, max_messages: int, ttl_seconds: int, prefix: str = "memsvc:buf:") -> None:
        self._redis = client
        self._cap = max_messages
        self._ttl = ttl_seconds
        self._prefix = prefix
        self._append = client.register_script(_APPEND)
        self._install = client.register_script(_INSTALL)

    def _keys(self, key: str) -> list[str]:
        """The list and its fill token, hash-tagged so both live in one Redis Cluster slot."""
        return [f"{self._prefix}{{{key}}}", f"{self._prefix}{{{key}}}:fill"]

    async def append(self, key: str, messages: Sequence[BufferedMessage]) -> None:
        if messages:
            args = [self._cap, self._ttl, *(codec.dump(m) for m in messages)]
            await self._append(keys=self._keys(key), args=args)

    async def begin_fill(self, key: str) -> str:
        token = uuid.uuid4().hex
        await self._redis.set(self._keys(key)[1], token, ex=_FILL_SECONDS)
        return token

    async def install(self, key: str, token: str, messages: Sequence[BufferedMessage]) -> bool:
        args = [self._cap, self._ttl, token, *(codec.dump(m) for m in messages[-self._cap :])]
        return bool(await self._install(keys=self._keys(key), args=args))

    async def recent(self, key: str, limit: int) -> list[BufferedMessage] | None:
        list_key = self._keys(key)[0]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(list_key)
            pipe.lrange(list_key, -limit, -1) if limit > 0 else pipe.lrange(list_key, 1, 0)
            if self._ttl:
                pipe.expire(list_key, self._ttl)
            exists, raw, *_ = await pipe.execute()
        if not exists:
            return None
        return codec.unique([codec.load(item) for item in raw])

    async def delete(self, key: str) -> None:
        await self._redis.delete(*self._keys(key))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
