"""The machinery under both clients: a request description, the retry policy, and two tiny transports.

Every API method is written once, as a function that builds a :class:`Call` (method, path, body,
and how to parse the answer). :class:`SyncTransport` and :class:`AsyncTransport` execute a call
with the same policy: an ``Idempotency-Key`` on every POST (kept across retries, so the service
answers a retried write once), retries with exponential backoff and jitter on 429, 503 and a 409
``idempotency_in_progress``, honouring ``Retry-After``, and on connection errors where resending is
safe. The descriptors at the end turn the builders into bound methods of the sync and async
resources, with the builder's signature and docstring.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx

from memory_service_client.errors import (
    APIConnectionError,
    APITimeoutError,
    error_for,
    retry_after,
)
from memory_service_client.models import Page

T = TypeVar("T")
P = ParamSpec("P")

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Methods whose repetition changes nothing more than the first did (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses that say "not done, try again": rate limited, unavailable.
RETRY_STATUSES = frozenset({429, 503})


def _none(_: httpx.Response) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request, described: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T] = _none  # type: ignore[assignment]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request, built once so every retry sends the same bytes and Idempotency-Key."""
        headers = dict(self.headers)
        if self.method == "POST" and IDEMPOTENCY_HEADER not in headers:
            headers[IDEMPOTENCY_HEADER] = str(uuid.uuid4())
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        return http.build_request(
            self.method,
            self.path,
            params=params or None,
            json=jsonable(self.json) if self.json is not None else None,
            content=self.content,
            headers=headers,
        )

    @property
    def idempotent(self) -> bool:
        """Whether resending after a broken connection is safe (POSTs are, through their Idempotency-Key)."""
        return self.method in IDEMPOTENT_METHODS or self.method == "POST"


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO-8601 strings and pydantic models as their JSON dicts."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again and how long to wait first.

    The n-th retry waits ``backoff * 2**n`` seconds (at most ``max_backoff``), with up to 25%
    random jitter, unless the answer carries ``Retry-After``: then that many seconds. A
    ``Retry-After`` longer than ``max_retry_after`` is not waited for: the error is raised.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.backoff * 2.0**attempt)
        return delay * (1 + random.random() / 4)

    def after_response(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying after this answer, or None to take the answer as it is."""
        if attempt >= self.max_retries or not _retryable(response):
            return None
        advised = retry_after(response)
        if advised is None:
            return self._backoff(attempt)
        return advised if advised <= self.max_retry_after else None

    def after_error(self, call: Call[Any], error: httpx.TransportError, attempt: int) -> float | None:
        """Seconds to wait before retrying after a transport error, or None to raise it."""
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if never_sent or (call.idempotent and isinstance(error, httpx.NetworkError | httpx.TimeoutException
                                                          | httpx.RemoteProtocolError)):
            return self._backoff(attempt)
        return None


def _retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409 and response.request.headers.get(IDEMPOTENCY_HEADER):
        # The first attempt of this very request is still being answered: its answer is coming.
        try:
            return bool(response.json().get("code") == "idempotency_in_progress")
        except (ValueError, AttributeError):
            return False
    return False


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the typed error it stands for."""
    if response.is_success:
        return call.parse(response)
    raise error_for(response)


def connection_error(call: Call[Any], error: httpx.TransportError) -> APIConnectionError:
    kind = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    return kind(f"{call.method} {call.path}: {type(error).__name__}: {error}")


class SyncTransport:
    def __init__(self, http: httpx.Client, retry: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = http
        self.retry = retry
        self.sleep = sleep

    def send(self, call: Call[T]) -> T:
        request = call.request(self.http)
        attempt = 0
        while True:
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                wait = self.retry.after_error(call, exc, attempt)
                if wait is None:
                    raise connection_error(call, exc) from exc
            else:
                wait = self.retry.after_response(response, attempt)
                if wait is None:
                    return finish(call, response)
                response.close()
            attempt += 1
            self.sleep(wait)


class AsyncTransport:
    def __init__(self, http: httpx.AsyncClient, retry: RetryPolicy,
                 sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep) -> None:
        self.http = http
        self.retry = retry
        self.sleep = sleep

    async def send(self, call: Call[T]) -> T:
        request = call.request(self.http)
        attempt = 0
        while True:
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                wait = self.retry.after_error(call, exc, attempt)
                if wait is None:
                    raise connection_error(call, exc) from exc
            else:
                wait = self.retry.after_response(response, attempt)
                if wait is None:
                    return finish(call, response)
                await response.aclose()
            attempt += 1
            await self.sleep(wait)


# --- binding the builders to the resources -------------------------------------------------


class SyncResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport


class AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport


class sync(Generic[P, T]):
    """``name = sync(build)`` in a resource class: a method that sends ``build(...)`` and returns its answer."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build

    @overload
    def __get__(self, obj: None, owner: type) -> sync[P, T]: ...
    @overload
    def __get__(self, obj: SyncResource, owner: type) -> Callable[P, T]: ...
    def __get__(self, obj: SyncResource | None, owner: type) -> sync[P, T] | Callable[P, T]:
        if obj is None:
            return self
        send, build = obj._transport.send, self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return send(build(*args, **kwargs))

        return method


class aio(Generic[P, T]):
    """``name = aio(build)`` in an async resource class: a coroutine method that sends ``build(...)``."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build

    @overload
    def __get__(self, obj: None, owner: type) -> aio[P, T]: ...
    @overload
    def __get__(self, obj: AsyncResource, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: AsyncResource | None, owner: type) -> aio[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if obj is None:
            return self
        send, build = obj._transport.send, self.build

        @functools.wraps(build)
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await send(build(*args, **kwargs))

        return method


class sync_pages(Generic[P, T]):
    """``name = sync_pages(build_list)``: an iterator over every item of every page of a listing."""

    def __init__(self, build: Callable[P, Call[Page[T]]]) -> None:
        self.build = build

    @overload
    def __get__(self, obj: None, owner: type) -> sync_pages[P, T]: ...
    @overload
    def __get__(self, obj: SyncResource, owner: type) -> Callable[P, Iterator[T]]: ...
    def __get__(self, obj: SyncResource | None, owner: type) -> sync_pages[P, T] | Callable[P, Iterator[T]]:
        if obj is None:
            return self
        send, build = obj._transport.send, self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            while True:
                page = send(build(*args, **kwargs))
                yield from page.items
                if not page.next_cursor:
                    return
                kwargs["cursor"] = page.next_cursor

        method.__doc__ = f"Every item of every page of ``{build.__name__}`` (``cursor`` is followed for you)."
        return method


class aio_pages(Generic[P, T]):
    """``name = aio_pages(build_list)``: an async iterator over every item of every page of a listing."""

    def __init__(self, build: Callable[P, Call[Page[T]]]) -> None:
        self.build = build

    @overload
    def __get__(self, obj: None, owner: type) -> aio_pages[P, T]: ...
    @overload
    def __get__(self, obj: AsyncResource, owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: AsyncResource | None, owner: type) -> aio_pages[P, T] | Callable[P, AsyncIterator[T]]:
        if obj is None:
            return self
        send, build = obj._transport.send, self.build

        async def method(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            while True:
                page = await send(build(*args, **kwargs))
                for item in page.items:
                    yield item
                if not page.next_cursor:
                    return
                kwargs["cursor"] = page.next_cursor

        method.__doc__ = f"Every item of every page of ``{build.__name__}`` (``cursor`` is followed for you)."
        return method
