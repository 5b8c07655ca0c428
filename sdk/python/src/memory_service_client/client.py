"""``MemoryServiceClient`` and ``AsyncMemoryServiceClient``: the same resources, sent by a sync or an async transport."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from memory_service_client import __version__
from memory_service_client._calls import MemoryCalls, SessionCalls, ToolCalls, UserCalls
from memory_service_client._core import (
    AsyncResource,
    AsyncTransport,
    RetryPolicy,
    SyncResource,
    SyncTransport,
    aio,
    aio_pages,
    sync,
    sync_pages,
)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0


# One line per operation and flavour; the operations themselves are written once, in _calls.py.


class Sessions(SyncResource):
    create = sync(SessionCalls.create)
    get = sync(SessionCalls.get)
    list = sync(SessionCalls.list)
    iter = sync_pages(SessionCalls.list)
    update = sync(SessionCalls.update)
    delete = sync(SessionCalls.delete)
    add_messages = sync(SessionCalls.add_messages)
    messages = sync(SessionCalls.messages)
    iter_messages = sync_pages(SessionCalls.messages)
    buffer = sync(SessionCalls.buffer)
    summary = sync(SessionCalls.summary)
    context = sync(SessionCalls.context)
    condense = sync(SessionCalls.condense)
    call_tool = sync(SessionCalls.call_tool)


class AsyncSessions(AsyncResource):
    create = aio(SessionCalls.create)
    get = aio(SessionCalls.get)
    list = aio(SessionCalls.list)
    iter = aio_pages(SessionCalls.list)
    update = aio(SessionCalls.update)
    delete = aio(SessionCalls.delete)
    add_messages = aio(SessionCalls.add_messages)
    messages = aio(SessionCalls.messages)
    iter_messages = aio_pages(SessionCalls.messages)
    buffer = aio(SessionCalls.buffer)
    summary = aio(SessionCalls.summary)
    context = aio(SessionCalls.context)
    condense = aio(SessionCalls.condense)
    call_tool = aio(SessionCalls.call_tool)


class Memories(SyncResource):
    add = sync(MemoryCalls.add)
    add_many = sync(MemoryCalls.add_many)
    get = sync(MemoryCalls.get)
    update = sync(MemoryCalls.update)
    delete = sync(MemoryCalls.delete)
    history = sync(MemoryCalls.history)
    list = sync(MemoryCalls.list)
    iter = sync_pages(MemoryCalls.list)
    search = sync(MemoryCalls.search)


class AsyncMemories(AsyncResource):
    add = aio(MemoryCalls.add)
    add_many = aio(MemoryCalls.add_many)
    get = aio(MemoryCalls.get)
    update = aio(MemoryCalls.update)
    delete = aio(MemoryCalls.delete)
    history = aio(MemoryCalls.history)
    list = aio(MemoryCalls.list)
    iter = aio_pages(MemoryCalls.list)
    search = aio(MemoryCalls.search)


class Users(SyncResource):
    get = sync(UserCalls.get)
    list = sync(UserCalls.list)
    iter = sync_pages(UserCalls.list)
    profile = sync(UserCalls.profile)
    update_profile = sync(UserCalls.update_profile)
    delete = sync(UserCalls.delete)
    export = sync(UserCalls.export)
    restore = sync(UserCalls.restore)


class AsyncUsers(AsyncResource):
    get = aio(UserCalls.get)
    list = aio(UserCalls.list)
    iter = aio_pages(UserCalls.list)
    profile = aio(UserCalls.profile)
    update_profile = aio(UserCalls.update_profile)
    delete = aio(UserCalls.delete)
    export = aio(UserCalls.export)
    restore = aio(UserCalls.restore)


class Tools(SyncResource):
    list = sync(ToolCalls.list)


class AsyncTools(AsyncResource):
    list = aio(ToolCalls.list)


def _settings(
    base_url: str | None, api_key: str | None, headers: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    url = base_url or os.environ.get("MEMORY_SERVICE_URL") or DEFAULT_URL
    key = api_key if api_key is not None else os.environ.get("MEMORY_API_KEY")
    sent = {"User-Agent": f"memory-service-client/{__version__}", "Accept": "application/json"}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    return url.rstrip("/"), sent


def _policy(max_retries: int, retry: RetryPolicy | None) -> RetryPolicy:
    return retry if retry is not None else RetryPolicy(max_retries=max_retries)


class MemoryServiceClient:
    """A blocking client: ``client.sessions``, ``client.memories``, ``client.users``, ``client.tools``.

    ``base_url`` defaults to ``$MEMORY_SERVICE_URL`` (else http://127.0.0.1:8000) and ``api_key`` to
    ``$MEMORY_API_KEY`` (sent as ``Authorization: Bearer``). ``timeout`` is in seconds (or an
    ``httpx.Timeout``). ``max_retries`` retries 429, 503, and connection errors where resending is
    safe, with exponential backoff honouring ``Retry-After``; pass ``retry=RetryPolicy(...)`` to tune
    it. ``transport`` is an httpx transport (for tests: ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, sent = _settings(base_url, api_key, headers)
        self.base_url = url
        self._http = httpx.Client(base_url=url, headers=sent, timeout=timeout, transport=transport)
        self._transport = SyncTransport(self._http, _policy(max_retries, retry))
        self.sessions = Sessions(self._transport)
        self.memories = Memories(self._transport)
        self.users = Users(self._transport)
        self.tools = Tools(self._transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MemoryServiceClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryServiceClient({self.base_url!r})"


class AsyncMemoryServiceClient:
    """The asyncio client: the same resources and arguments as :class:`MemoryServiceClient`, awaited.

    ``async for`` over ``client.memories.iter(...)`` (and the other ``iter*``) follows the cursor.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, sent = _settings(base_url, api_key, headers)
        self.base_url = url
        self._http = httpx.AsyncClient(base_url=url, headers=sent, timeout=timeout, transport=transport)
        self._transport = AsyncTransport(self._http, _policy(max_retries, retry))
        self.sessions = AsyncSessions(self._transport)
        self.memories = AsyncMemories(self._transport)
        self.users = AsyncUsers(self._transport)
        self.tools = AsyncTools(self._transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemoryServiceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncMemoryServiceClient({self.base_url!r})"
