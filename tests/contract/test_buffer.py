"""The short-term buffer contract, run on the in-process buffer and on Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from service.storage.buffer.memory import InProcessBuffer
from service.storage.buffer.redis import RedisBuffer
from service.storage.ports import MessageBuffer
from service.storage.records import BufferedMessage

T0 = datetime(2024, 5, 8, 13, 56, tzinfo=UTC)
CAP = 5
TTL = 3600


def msg(i: int) -> BufferedMessage:
    return BufferedMessage(f"id{i}", i, "user", f"message {i} ✓", "ann" if i % 2 else None, T0 + timedelta(seconds=i), i + 1)


@pytest.fixture(params=["in-process", "redis"])
async def buffer(request: pytest.FixtureRequest) -> AsyncIterator[MessageBuffer]:
    if request.param == "in-process":
        impl: MessageBuffer = InProcessBuffer(CAP, TTL)
    else:
        impl = RedisBuffer(Redis.from_url(request.getfixturevalue("redis_url")), CAP, TTL)
    yield impl
    await impl.close()


@pytest.fixture
def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_missing_buffer_reads_as_none(buffer: MessageBuffer, key: str) -> None:
    assert await buffer.recent(key, 3) is None


async def fill(buffer: MessageBuffer, key: str, messages: list[BufferedMessage]) -> bool:
    return await buffer.install(key, await buffer.begin_fill(key), messages)


async def test_install_then_recent_round_trips_oldest_first(buffer: MessageBuffer, key: str) -> None:
    assert await fill(buffer, key, [msg(0), msg(1), msg(2)])
    assert await buffer.recent(key, 2) == [msg(1), msg(2)]
    assert await buffer.recent(key, 10) == [msg(0), msg(1), msg(2)]


async def test_append_extends_an_existing_buffer_and_trims_to_cap(buffer: MessageBuffer, key: str) -> None:
    await fill(buffer, key, [msg(0)])
    await buffer.append(key, [msg(i) for i in range(1, 8)])
    assert await buffer.recent(key, 100) == [msg(i) for i in range(3, 8)]


async def test_append_to_a_missing_buffer_creates_nothing(buffer: MessageBuffer, key: str) -> None:
    await buffer.append(key, [msg(0)])
    assert await buffer.recent(key, 10) is None


async def test_a_write_during_a_fill_cancels_it(buffer: MessageBuffer, key: str) -> None:
    token = await buffer.begin_fill(key)
    await buffer.append(key, [msg(5)])  # acknowledged after the reader's SQL snapshot was taken
    assert not await buffer.install(key, token, [msg(0)])  # that older snapshot must not be kept
    assert await buffer.recent(key, 10) is None
    assert await fill(buffer, key, [msg(0), msg(5)])
    assert await buffer.recent(key, 10) == [msg(0), msg(5)]


async def test_a_write_before_the_fill_does_not_block_it(buffer: MessageBuffer, key: str) -> None:
    await buffer.append(key, [msg(0)])
    assert await fill(buffer, key, [msg(0)])
    assert await buffer.recent(key, 10) == [msg(0)]


async def test_a_message_in_both_snapshot_and_append_is_read_once(buffer: MessageBuffer, key: str) -> None:
    assert await fill(buffer, key, [msg(0), msg(1)])
    await buffer.append(key, [msg(1), msg(2)])
    assert await buffer.recent(key, 10) == [msg(0), msg(1), msg(2)]


async def test_a_stale_token_is_refused(buffer: MessageBuffer, key: str) -> None:
    old = await buffer.begin_fill(key)
    assert await fill(buffer, key, [msg(0)])
    assert not await buffer.install(key, old, [msg(9)])
    assert await buffer.recent(key, 10) == [msg(0)]


async def test_install_keeps_only_the_newest_cap_messages(buffer: MessageBuffer, key: str) -> None:
    await fill(buffer, key, [msg(i) for i in range(9)])
    assert await buffer.recent(key, 100) == [msg(i) for i in range(4, 9)]


async def test_delete_drops_the_buffer(buffer: MessageBuffer, key: str) -> None:
    await fill(buffer, key, [msg(0)])
    await buffer.delete(key)
    assert await buffer.recent(key, 10) is None


async def test_ping(buffer: MessageBuffer) -> None:
    assert await buffer.ping()


async def test_redis_buffer_sets_the_idle_ttl(redis_url: str, key: str) -> None:
    client = Redis.from_url(redis_url)
    buffer = RedisBuffer(client, CAP, TTL, prefix="ttl:")
    await fill(buffer, key, [msg(0)])
    ttl = await client.ttl(f"ttl:{{{key}}}")  # hash-tagged key (Redis Cluster slot)
    assert 0 < ttl <= TTL
    await buffer.close()


async def test_in_process_buffer_expires_after_idle_ttl(key: str) -> None:
    now = [1000.0]
    buffer = InProcessBuffer(CAP, 60, clock=lambda: now[0])
    await fill(buffer, key, [msg(0)])
    now[0] += 59
    assert await buffer.recent(key, 1) == [msg(0)]  # a read keeps it alive
    now[0] += 61
    assert await buffer.recent(key, 1) is None
