"""Builds the backends at start-up, keeps them in a typed State, closes them at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from service.domain.messages import Limits, MessageService
from service.domain.sessions import SessionService
from service.embedding.tokens import BpeTokenCounter
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage import factory
from service.storage.ports import Database, MessageBuffer, TokenCounter


@dataclass(slots=True)
class Backends:
    db: Database
    buffer: MessageBuffer
    tokens: TokenCounter


@dataclass(slots=True)
class State:
    settings: Settings
    backends: Backends
    metrics: Metrics
    sessions: SessionService
    messages: MessageService


BuildBackends = Callable[[Settings, Metrics], AbstractAsyncContextManager[Backends]]


@asynccontextmanager
async def open_backends(settings: Settings, metrics: Metrics) -> AsyncIterator[Backends]:
    """The backends the settings name, closed in reverse order on exit."""
    async with AsyncExitStack() as stack:
        db = factory.open_database(settings)
        stack.push_async_callback(db.close)
        metrics.instrument_engine(db.engine)
        buffer = factory.open_buffer(settings)
        stack.push_async_callback(buffer.close)
        yield Backends(db=db, buffer=buffer, tokens=BpeTokenCounter(settings.tokenizer_encoding))


def build_state(settings: Settings, backends: Backends, metrics: Metrics) -> State:
    limits = Limits(
        max_batch_items=settings.max_batch_items,
        max_content_chars=settings.max_content_chars,
        buffer_max_messages=settings.buffer_max_messages,
        buffer_ttl_seconds=settings.buffer_ttl_seconds,
    )
    return State(
        settings=settings,
        backends=backends,
        metrics=metrics,
        sessions=SessionService(backends.db, backends.buffer),
        messages=MessageService(backends.db, backends.buffer, backends.tokens, limits),
    )


def make_lifespan(
    settings: Settings, metrics: Metrics, build: BuildBackends = open_backends
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, metrics) as backends:
            app.state.memory = build_state(settings, backends, metrics)
            yield

    return lifespan
