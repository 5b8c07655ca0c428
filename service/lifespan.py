"""Builds the backends at start-up, keeps them in a typed State, closes them at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from service.domain.episodic import record_episodes
from service.domain.indexing import SYNC_MEMORY, Indexer
from service.domain.memories import MemoryLimits, MemoryService
from service.domain.messages import Limits, MessageService
from service.domain.search import SearchService
from service.domain.sessions import SessionService
from service.domain.upkeep import purge_expired, refresh_state_gauges
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.embedding.sparse import Bm25Encoder
from service.embedding.tokens import BpeTokenCounter
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage import factory
from service.storage.ports import Database, Embedder, MessageBuffer, SparseEncoder, TokenCounter, VectorIndex
from service.workers.outbox import OutboxConfig, OutboxWorker
from service.workers.supervisor import Supervisor, every

STATE_GAUGES_SECONDS = 60.0


@dataclass(slots=True)
class Backends:
    db: Database
    buffer: MessageBuffer
    tokens: TokenCounter
    embedder: Embedder
    sparse: SparseEncoder
    vectors: VectorIndex


@dataclass(slots=True)
class State:
    settings: Settings
    backends: Backends
    metrics: Metrics
    sessions: SessionService
    messages: MessageService
    memories: MemoryService
    search: SearchService
    indexer: Indexer
    outbox: OutboxWorker


BuildBackends = Callable[[Settings, Metrics], AbstractAsyncContextManager[Backends]]


async def open_embedder(settings: Settings, metrics: Metrics) -> SentenceTransformerEmbedder:
    embedder = await SentenceTransformerEmbedder.load(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        queue_size=settings.embedding_queue_size,
        on_batch=metrics.observe_embedding_batch,
        threads=settings.embedding_threads,
    )
    await embedder.start()
    return embedder


@asynccontextmanager
async def open_backends(
    settings: Settings, metrics: Metrics, embedder: Embedder | None = None, fresh_vectors: bool = False
) -> AsyncIterator[Backends]:
    """The backends the settings name, closed in reverse order on exit (a given embedder is the caller's).

    ``fresh_vectors`` starts from an empty vector index (``memory-service reindex``).
    """
    async with AsyncExitStack() as stack:
        db = factory.open_database(settings)
        stack.push_async_callback(db.close)
        metrics.instrument_engine(db.engine)
        buffer = factory.open_buffer(settings)
        stack.push_async_callback(buffer.close)
        if embedder is None:
            embedder = await open_embedder(settings, metrics)
            stack.push_async_callback(embedder.close)
        vectors = await factory.open_vectors(settings, embedder.dimension, fresh=fresh_vectors)
        stack.push_async_callback(vectors.close)
        yield Backends(
            db=db,
            buffer=buffer,
            tokens=BpeTokenCounter(settings.tokenizer_encoding),
            embedder=embedder,
            sparse=Bm25Encoder(),
            vectors=vectors,
        )


def build_state(settings: Settings, backends: Backends, metrics: Metrics) -> State:
    indexer = Indexer(backends.db, backends.embedder, backends.sparse, backends.vectors)
    outbox = OutboxWorker(
        backends.db,
        {SYNC_MEMORY: indexer.sync},
        metrics,
        OutboxConfig(
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            max_attempts=settings.job_max_attempts,
        ),
    )
    limits = Limits(
        max_batch_items=settings.max_batch_items,
        max_content_chars=settings.max_content_chars,
        buffer_max_messages=settings.buffer_max_messages,
        buffer_ttl_seconds=settings.buffer_ttl_seconds,
    )
    memory_limits = MemoryLimits(settings.max_batch_items, settings.max_content_chars, settings.dedup_similarity)
    return State(
        settings=settings,
        backends=backends,
        metrics=metrics,
        sessions=SessionService(backends.db, backends.buffer, wake=outbox.wake),
        messages=MessageService(
            backends.db, backends.buffer, backends.tokens, limits, on_stored=[record_episodes], on_committed=outbox.wake
        ),
        memories=MemoryService(backends.db, backends.embedder, backends.vectors, indexer, memory_limits, wake=outbox.wake),
        search=SearchService(backends.db, backends.embedder, backends.sparse, backends.vectors, metrics),
        indexer=indexer,
        outbox=outbox,
    )


def background(state: State) -> Supervisor:
    """The background loops of this process: the outbox, expiry purges, the state gauges."""
    supervisor = Supervisor()
    supervisor.add("outbox", state.outbox.run)
    supervisor.add("purge", every(state.settings.purge_interval_seconds, lambda: purge_expired(state.backends.db)))
    supervisor.add(
        "state-gauges", every(STATE_GAUGES_SECONDS, lambda: refresh_state_gauges(state.backends.db, state.metrics))
    )
    return supervisor


def make_lifespan(
    settings: Settings, metrics: Metrics, build: BuildBackends = open_backends
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, metrics) as backends:
            state = build_state(settings, backends, metrics)
            app.state.memory = state
            supervisor = background(state)
            if settings.run_workers:
                supervisor.start()
            try:
                yield
            finally:
                await supervisor.stop()

    return lifespan
