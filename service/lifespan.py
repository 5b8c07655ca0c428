"""Builds the backends at start-up, keeps them in a typed State, closes them at shutdown."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from service.digest.extractive import ExtractiveSummarizer
from service.digest.facts import RuleFactExtractor
from service.digest.model import FactExtractor, Summarizer
from service.domain.auth import KeyService
from service.domain.condense import Condenser
from service.domain.context import ContextService
from service.domain.document_index import SYNC_DOCUMENT, ChunkIndexer
from service.domain.documents import DocumentLimits, DocumentService
from service.domain.digests import DIGEST_SESSION, DigestStep, SessionDigester, queue_digest
from service.domain.episodic import record_episodes
from service.domain.extraction import FactExtraction
from service.domain.erasure import DROP_BUFFER, ERASE_USER, UserEraser
from service.domain.export import Exporter
from service.domain.idempotency import IdempotencyService
from service.domain.indexing import SYNC_MEMORY, Indexer
from service.domain.limits import RateLimiter
from service.domain.memories import MemoryLimits, MemoryService
from service.domain.records import MEMORY_TYPES
from service.domain.messages import Limits, MessageService
from service.domain.profiles import REFRESH_PROFILE, ProfileService
from service.domain.search import SearchService
from service.domain.sessions import SessionService
from service.domain.restore import Importer
from service.domain.retention import Retention, RetentionPolicy
from service.domain.summaries import BufferCaps, RollingSummaries
from service.domain.tools import ToolRunner
from service.domain.users import UserService
from service.domain.upkeep import INDEXING_KINDS, purge_expired, refresh_state_gauges
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.embedding.sparse import Bm25Encoder
from service.embedding.tokens import BpeTokenCounter
from service.llm.adapters import LlmFactExtractor, LlmSummarizer
from service.llm.client import ChatClient
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage import factory
from service.storage.ports import (
    Database,
    Embedder,
    MessageBuffer,
    RateCounter,
    SparseEncoder,
    TokenCounter,
    VectorIndex,
)
from service.storage.ratelimit import open_rate_counter
from service.workers.outbox import OutboxConfig, OutboxWorker
from service.workers.supervisor import Supervisor, every

STATE_GAUGES_SECONDS = 60.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Backends:
    db: Database
    buffer: MessageBuffer
    tokens: TokenCounter
    embedder: Embedder
    sparse: SparseEncoder
    vectors: VectorIndex
    rates: RateCounter
    llm: ChatClient | None = None


@dataclass(slots=True)
class State:
    settings: Settings
    backends: Backends
    metrics: Metrics
    sessions: SessionService
    messages: MessageService
    memories: MemoryService
    search: SearchService
    context: ContextService
    summaries: RollingSummaries
    condenser: Condenser
    tools: ToolRunner
    indexer: Indexer
    outbox: OutboxWorker
    keys: KeyService
    limiter: RateLimiter
    idempotency: IdempotencyService
    users: UserService
    profiles: ProfileService
    eraser: UserEraser
    exporter: Exporter
    importer: Importer
    retention: RetentionPolicy
    documents: DocumentService
    chunks: ChunkIndexer


BuildBackends = Callable[[Settings, Metrics], AbstractAsyncContextManager[Backends]]


async def open_embedder(settings: Settings, metrics: Metrics) -> SentenceTransformerEmbedder:
    embedder = await SentenceTransformerEmbedder.load(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        queue_size=settings.embedding_queue_size,
        on_batch=metrics.observe_embedding_batch,
        threads=settings.embedding_threads,
        query_lane=settings.embedding_query_lane,
        backend=settings.embedding_backend,
        cache_dir=settings.embedding_cache_dir or settings.data_dir / "models",
        index_streams=settings.embedding_index_streams,
        query_threads=settings.embedding_query_threads,
        background_nice=settings.background_nice,
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
        rates = open_rate_counter(settings.redis_url)
        stack.push_async_callback(rates.close)
        llm = open_llm(settings, metrics)
        if llm is not None:
            stack.push_async_callback(llm.close)
        yield Backends(
            db=db,
            buffer=buffer,
            tokens=BpeTokenCounter(settings.tokenizer_encoding),
            embedder=embedder,
            sparse=Bm25Encoder(),
            vectors=vectors,
            rates=rates,
            llm=llm,
        )


def open_llm(settings: Settings, metrics: Metrics) -> ChatClient | None:
    """The optional OpenAI-compatible client, when ``MEMORY_LLM_BASE_URL`` is set."""
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ChatClient.open(settings.llm_base_url, key, settings.llm_model, settings.llm_timeout_seconds, metrics)


def digesters(backends: Backends) -> tuple[Summarizer, FactExtractor]:
    """The extractive summarizer and rule-based extractor, behind the LLM when one is configured."""
    summarizer: Summarizer = ExtractiveSummarizer(backends.tokens)
    extractor: FactExtractor = RuleFactExtractor()
    if backends.llm is None:
        return summarizer, extractor
    return LlmSummarizer(backends.llm, summarizer, backends.tokens), LlmFactExtractor(backends.llm, extractor)


def build_state(settings: Settings, backends: Backends, metrics: Metrics) -> State:
    metrics.declare_memory_types(MEMORY_TYPES)
    indexer = Indexer(backends.db, backends.embedder, backends.sparse, backends.vectors)
    summarizer, extractor = digesters(backends)
    memory_limits = MemoryLimits(settings.max_batch_items, settings.max_content_chars, settings.dedup_similarity)
    # The outbox is built below; the digest step needs these memories, and they need its wake-up.
    memories = MemoryService(
        backends.db, backends.embedder, backends.vectors, indexer, memory_limits, wake=lambda: outbox.wake()
    )
    summaries = RollingSummaries(
        backends.db,
        summarizer,
        backends.tokens,
        BufferCaps(settings.buffer_max_messages, settings.buffer_max_tokens),
        settings.summary_max_tokens,
        metrics,
    )
    condenser = Condenser(
        backends.db,
        summarizer,
        settings.condense_every_messages,
        settings.condense_max_tokens,
        metrics,
        wake=lambda: outbox.wake(),
    )
    steps: list[DigestStep] = [summaries.fold, condenser.due]
    if settings.extract_facts:
        steps.insert(1, FactExtraction(backends.db, extractor, memories, metrics).run)
    profiles = ProfileService(backends.db)
    eraser = UserEraser(backends.db, backends.buffer, backends.vectors, wake=lambda: outbox.wake())
    chunks = ChunkIndexer(backends.db, backends.embedder, backends.sparse, backends.vectors)
    documents = DocumentService(
        backends.db,
        backends.tokens,
        DocumentLimits(settings.max_document_chars, settings.document_chunk_tokens, settings.document_overlap_tokens),
        wake=lambda: outbox.wake(),
    )
    outbox = OutboxWorker(
        backends.db,
        {
            SYNC_MEMORY: indexer.sync,
            SYNC_DOCUMENT: chunks.sync,
            DIGEST_SESSION: SessionDigester(steps).run,
            REFRESH_PROFILE: profiles.refresh,
            ERASE_USER: eraser.erase_vectors,
            DROP_BUFFER: eraser.drop_buffers,
        },
        metrics,
        OutboxConfig(
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            loops=settings.worker_loops,
            priority_loops=settings.worker_index_loops,
            priority_kinds=INDEXING_KINDS,
            max_attempts=settings.job_max_attempts,
            claims_dir=settings.data_dir,
        ),
    )
    limits = Limits(
        max_batch_items=settings.max_batch_items,
        max_content_chars=settings.max_content_chars,
        buffer_max_messages=settings.buffer_max_messages,
        buffer_ttl_seconds=settings.buffer_ttl_seconds,
        buffer_max_tokens=settings.buffer_max_tokens,
    )
    messages = MessageService(
        backends.db,
        backends.buffer,
        backends.tokens,
        limits,
        on_stored=[record_episodes, queue_digest],
        on_committed=outbox.wake,
    )
    search = SearchService(backends.db, backends.embedder, backends.sparse, backends.vectors, metrics)
    sessions = SessionService(backends.db, backends.buffer, wake=outbox.wake)
    context = ContextService(backends.db, sessions, messages, search, backends.tokens, metrics)
    return State(
        settings=settings,
        backends=backends,
        metrics=metrics,
        sessions=sessions,
        messages=messages,
        memories=memories,
        search=search,
        context=context,
        summaries=summaries,
        condenser=condenser,
        tools=ToolRunner(memories, search, context),
        indexer=indexer,
        outbox=outbox,
        keys=KeyService(backends.db),
        limiter=RateLimiter(backends.rates, settings.rate_limit_per_minute),
        idempotency=IdempotencyService(backends.db, settings.idempotency_ttl_seconds),
        users=UserService(backends.db),
        profiles=profiles,
        eraser=eraser,
        exporter=Exporter(backends.db),
        importer=Importer(backends.db, backends.buffer, documents, wake=outbox.wake),
        documents=documents,
        chunks=chunks,
        retention=RetentionPolicy(
            backends.db,
            backends.buffer,
            Retention(settings.message_retention_days, settings.memory_retention_days),
            metrics,
            wake=outbox.wake,
        ),
    )


def background(state: State) -> Supervisor:
    """The background loops of this process: the outbox, expiry purges, the state gauges."""
    supervisor = Supervisor()
    supervisor.add("outbox", state.outbox.run)
    supervisor.add("purge", every(state.settings.purge_interval_seconds, lambda: purge_expired(state.backends.db)))
    supervisor.add("idempotency-purge", every(state.settings.purge_interval_seconds, state.idempotency.purge))
    supervisor.add("retention", every(state.settings.purge_interval_seconds, state.retention.apply))
    supervisor.add(
        "state-gauges", every(STATE_GAUGES_SECONDS, lambda: refresh_state_gauges(state.backends.db, state.metrics))
    )
    return supervisor


async def secure(state: State) -> None:
    """Install ``MEMORY_ADMIN_KEY``, or warn loudly that the API is open."""
    settings = state.settings
    if settings.auth_disabled:
        log.warning(
            "authentication is disabled (MEMORY_AUTH_DISABLED=true): every caller is an admin of tenant %r",
            settings.default_tenant,
        )
        return
    await state.keys.ensure_tenant(settings.default_tenant)
    if settings.admin_key is not None:
        await state.keys.bootstrap(settings.admin_key.get_secret_value(), settings.default_tenant)


@contextmanager
def _collector_tuned(gen0_threshold: int) -> Iterator[None]:
    """While the app runs: the startup heap frozen, and the cycle collector's first generation
    collected every ``gen0_threshold`` allocations instead of Python's 700 (0: left as it is).
    At 700 a bulk import spent 35 us a line (a tenth of its CPU) in collections that found
    almost nothing: a batch's records live until the batch is written. Both are set back when
    the app stops; another app of this process that tuned them first keeps its settings."""
    frozen = _freeze_startup_heap()
    before = gc.get_threshold()
    tuned = frozen and gen0_threshold > 0
    if tuned:
        gc.set_threshold(gen0_threshold, *before[1:])
    try:
        yield
    finally:
        if tuned:
            gc.set_threshold(*before)
        if frozen:
            gc.unfreeze()


def _freeze_startup_heap() -> bool:
    """Move what startup built (modules, the model, the backends: about 570,000 objects) out of
    the cycle collector's view; whether it did. Every full collection walked them all, 0.25 s
    a time, and a bulk import of 50,000 lines made several (a tenth of its CPU). No collection
    first: it found 42 garbage objects and took 0.3 s. Left alone when another app of this
    process froze it already (tests run several)."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def make_lifespan(
    settings: Settings, metrics: Metrics, build: BuildBackends = open_backends
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, metrics) as backends:
            state = build_state(settings, backends, metrics)
            await secure(state)
            app.state.memory = state
            supervisor = background(state)
            if settings.run_workers:
                supervisor.start()
            try:
                with _collector_tuned(settings.gc_gen0_threshold):
                    yield
            finally:
                await supervisor.stop()

    return lifespan
