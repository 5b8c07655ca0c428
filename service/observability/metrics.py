"""Prometheus metrics: one ``Metrics`` object per registry, never module-level metric objects.

Each app (and each test) builds its own ``Metrics(registry)``; the rest of the code calls its
small ``observe_*`` / ``job_*`` / ``set_*`` methods and never touches prometheus-client directly.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set *before prometheus_client is first
imported* (it picks its value class at import time), every process writes its samples to mmap
files in that folder and ``render_latest`` merges them, so several uvicorn workers behind one
port report one set of series. Clean the folder before the processes start
(``prepare_multiprocess_dir``) and call ``mark_process_dead(pid)`` when a worker exits, so
``live*`` gauges (in-flight requests, queue readings) forget it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess, values
from prometheus_client.exposition import choose_encoder

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Buckets, in seconds unless stated.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EMBEDDING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(11))  # 1, 2, 4, ... 1024 items
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SEARCH_MODES = ("hybrid", "semantic", "keyword")
VECTOR_MODES = ("dense", "sparse")
TOKEN_DIRECTIONS = ("input", "output")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
LLM_OUTCOMES = ("ok", "error", "timeout", "invalid")
RETENTION_KINDS = ("messages", "memories")

_QUERY_START_KEY = "memory_service.query_start"

GaugeMode = Literal["livesum", "livemostrecent", "mostrecent", "max", "livemax"]


def multiprocess_dir() -> str | None:
    """The multiprocess folder in force, or None when each process reports alone.

    In force means set *and* seen by prometheus_client at import: a folder exported later would
    otherwise make ``render_latest`` read empty files while the samples stay in memory.
    """
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return folder


class Metrics:
    """Every metric the service exports, created in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._labels: dict[str, tuple[str, ...]] = {}
        self._types: dict[str, str] = {}
        counter, gauge, histogram = self._counter, self._gauge, self._histogram

        # --- HTTP ----------------------------------------------------------------------------
        self.http_requests = counter(
            "memory_http_requests_total",
            "HTTP requests by method, route template and status class.",
            ("method", "route", "status_class"),
        )
        self.http_duration = histogram(
            "memory_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ("method", "route"),
            HTTP_BUCKETS,
        )
        self.http_in_flight = gauge(
            "memory_http_requests_in_flight", "HTTP requests being served now.", mode="livesum"
        )

        # --- embedding, vectors, SQL, search ---------------------------------------------------
        self.embedding_batch_size = histogram(
            "memory_embedding_batch_size", "Texts per embedding batch.", (), BATCH_SIZE_BUCKETS
        )
        self.embedding_seconds = histogram(
            "memory_embedding_seconds", "Time to embed one batch.", (), EMBEDDING_BUCKETS
        )
        self.vector_search_seconds = histogram(
            "memory_vector_search_seconds",
            "Vector index query latency by mode (dense|sparse).",
            ("mode",),
            FAST_BUCKETS,
        )
        self.sql_query_seconds = histogram(
            "memory_sql_query_seconds", "SQL statement latency (cursor execute to result).", (), FAST_BUCKETS
        )
        self.search_seconds = histogram(
            "memory_search_seconds",
            "Whole memory search latency by mode (hybrid|semantic|keyword).",
            ("mode",),
            SEARCH_BUCKETS,
        )

        self.context_seconds = histogram(
            "memory_context_seconds", "Whole context-building latency (search, packing).", (), SEARCH_BUCKETS
        )

        # --- jobs ------------------------------------------------------------------------------
        # Queue readings describe one global outbox table: the latest reading of a live process wins.
        self.jobs_pending = gauge("memory_jobs_pending", "Jobs waiting in the outbox.")
        self.jobs_oldest_pending_age = gauge(
            "memory_jobs_oldest_pending_age_seconds", "Age of the oldest pending job of any kind (queue lag)."
        )
        self.indexing_lag = gauge(
            "memory_indexing_lag_seconds",
            "Age of the oldest pending indexing job: how long a new memory has waited to be searchable.",
        )
        self.jobs_completed = counter(
            "memory_jobs_completed_total", "Jobs finished successfully, by kind.", ("kind",)
        )
        self.job_failures = counter("memory_job_failures_total", "Job attempts that raised, by kind.", ("kind",))
        self.job_retries = counter(
            "memory_job_retries_total", "Jobs rescheduled for another attempt, by kind.", ("kind",)
        )

        # --- summaries, extraction, LLM ----------------------------------------------------------
        self.summaries = counter("memory_summaries_total", "Session summaries written.")
        self.extractions = counter("memory_extractions_total", "Memory extraction runs completed.")
        self.llm_calls = counter(
            "memory_llm_calls_total", "LLM calls by outcome (ok|error|timeout|invalid).", ("outcome",)
        )
        self.llm_tokens = counter("memory_llm_tokens_total", "LLM tokens by direction (input|output).", ("direction",))
        self.llm_errors = counter("memory_llm_errors_total", "LLM calls that did not succeed.")

        # --- governance --------------------------------------------------------------------------
        self.retention_purged = counter(
            "memory_retention_purged_total", "Records purged by the retention policy, by kind.", ("kind",)
        )

        # --- state: refreshed by a periodic job from cheap counters, never COUNT(*) per scrape ---
        self.sessions = gauge("memory_sessions", "Sessions stored.")
        self.messages = gauge("memory_messages", "Messages stored.")
        self.memories = gauge("memory_memories", "Long-term memories stored, by type.", ("type",))
        self._memory_types: set[str] = set()

        # Known label values start at zero, so their series exist before the first event.
        for mode in VECTOR_MODES:
            self.vector_search_seconds.labels(mode)
        for mode in SEARCH_MODES:
            self.search_seconds.labels(mode)
        for direction in TOKEN_DIRECTIONS:
            self.llm_tokens.labels(direction)
        for outcome in LLM_OUTCOMES:
            self.llm_calls.labels(outcome)
        for kind in RETENTION_KINDS:
            self.retention_purged.labels(kind)

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        self._remember(name, "counter", labels)
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(
        self, name: str, doc: str, labels: tuple[str, ...] = (), *, mode: GaugeMode = "livemostrecent"
    ) -> Gauge:
        self._remember(name, "gauge", labels)
        return Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode)

    def _histogram(self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
        self._remember(name, "histogram", labels)
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def _remember(self, name: str, kind: str, labels: tuple[str, ...]) -> None:
        self._types[name] = kind
        self._labels[name] = labels

    # --- introspection -----------------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Exported name, as written in PromQL (``_total`` for counters) -> metric type."""
        return dict(self._types)

    def label_names(self) -> dict[str, tuple[str, ...]]:
        """Exported name -> its label names (a histogram's ``le`` not included)."""
        return dict(self._labels)

    # --- label values known up front: their series start at zero, so no panel reads "no data" ---
    def declare_routes(self, routes: Iterable[tuple[str, str]]) -> None:
        """(method, route template) pairs: every status class of each, and its latency histogram."""
        for method, route in routes:
            self.http_duration.labels(method, route)
            for status_class in STATUS_CLASSES:
                self.http_requests.labels(method, route, status_class)

    def declare_job_kinds(self, kinds: Iterable[str]) -> None:
        for kind in kinds:
            self.jobs_completed.labels(kind)
            self.job_failures.labels(kind)
            self.job_retries.labels(kind)

    def declare_memory_types(self, types: Iterable[str]) -> None:
        """Types whose count reads 0 until a refresh counts some (and after they are all gone)."""
        for kind in set(types) - self._memory_types:
            self.memories.labels(kind).set(0)
        self._memory_types |= set(types)

    # --- HTTP (called by HttpMetricsMiddleware) ------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, f"{status // 100}xx").inc()
        self.http_duration.labels(method, route).observe(seconds)

    # --- embedding, vectors, SQL, search ---------------------------------------------------------
    def observe_embedding_batch(self, size: int, seconds: float) -> None:
        self.embedding_batch_size.observe(size)
        self.embedding_seconds.observe(seconds)

    def observe_vector_search(self, mode: str, seconds: float) -> None:
        self.vector_search_seconds.labels(mode).observe(seconds)

    def observe_sql_query(self, seconds: float) -> None:
        self.sql_query_seconds.observe(seconds)

    def observe_search(self, mode: str, seconds: float) -> None:
        self.search_seconds.labels(mode).observe(seconds)

    # --- jobs ----------------------------------------------------------------------------------
    def job_completed(self, kind: str) -> None:
        self.jobs_completed.labels(kind).inc()

    def job_failed(self, kind: str) -> None:
        self.job_failures.labels(kind).inc()

    def job_retried(self, kind: str) -> None:
        self.job_retries.labels(kind).inc()

    def set_queue(self, pending: int, oldest_age: float | None, indexing_lag: float | None = None) -> None:
        """Record one queue reading; an age is None (reported as 0) when nothing waits."""
        self.jobs_pending.set(pending)
        self.jobs_oldest_pending_age.set(oldest_age or 0.0)
        self.indexing_lag.set(indexing_lag or 0.0)

    def observe_context(self, seconds: float) -> None:
        self.context_seconds.observe(seconds)

    # --- summaries, extraction, LLM --------------------------------------------------------------
    def summary_written(self) -> None:
        self.summaries.inc()

    def extraction_completed(self) -> None:
        self.extractions.inc()

    def observe_llm_call(self, outcome: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """One LLM call: ``outcome`` is ok|error|timeout|invalid; anything but ok counts as an error."""
        self.llm_calls.labels(outcome).inc()
        if input_tokens:
            self.llm_tokens.labels("input").inc(input_tokens)
        if output_tokens:
            self.llm_tokens.labels("output").inc(output_tokens)
        if outcome != "ok":
            self.llm_errors.inc()

    def retention_purged_records(self, kind: str, count: int) -> None:
        """``count`` records of ``kind`` (messages|memories) left every store by the retention policy."""
        if count:
            self.retention_purged.labels(kind).inc(count)

    # --- state ---------------------------------------------------------------------------------
    def set_state_counts(self, sessions: int, messages: int, memories_by_type: Mapping[str, int]) -> None:
        """Publish the stored-object counts; types seen before but absent now drop to 0."""
        self.sessions.set(sessions)
        self.messages.set(messages)
        for kind in self._memory_types - set(memories_by_type):
            self.memories.labels(kind).set(0)
        for kind, count in memories_by_type.items():
            self.memories.labels(kind).set(count)
        self._memory_types |= set(memories_by_type)

    # --- SQLAlchemy ------------------------------------------------------------------------------
    def instrument_engine(self, engine: Any) -> None:
        """Observe every statement's latency on ``engine`` (an AsyncEngine or a sync Engine).

        Idempotent: instrumenting the same engine twice installs the listeners once.
        """
        from sqlalchemy import event

        sync_engine = getattr(engine, "sync_engine", engine)
        if event.contains(sync_engine, "before_cursor_execute", self._before_cursor_execute):
            return
        event.listen(sync_engine, "before_cursor_execute", self._before_cursor_execute)
        event.listen(sync_engine, "after_cursor_execute", self._after_cursor_execute)
        event.listen(sync_engine, "handle_error", self._handle_error)

    def _before_cursor_execute(self, conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault(_QUERY_START_KEY, []).append(time.perf_counter())

    def _after_cursor_execute(self, conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
        starts = conn.info.get(_QUERY_START_KEY)
        if starts:
            self.sql_query_seconds.observe(time.perf_counter() - starts.pop())

    def _handle_error(self, exception_context: Any) -> None:
        conn = exception_context.connection
        if conn is None:
            return
        starts = conn.info.get(_QUERY_START_KEY)
        if starts:
            self.sql_query_seconds.observe(time.perf_counter() - starts.pop())


def render_latest(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition body and its content type.

    In multiprocess mode the samples of every process are merged from the folder's files (the
    given registry's metrics are among them, so it is not read twice). ``accept`` is the
    request's Accept header; OpenMetrics is served when the scraper asks for it.
    """
    if multiprocess_dir():
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        registry = merged
    if accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Forget a dead process's ``live*`` gauges; a no-op outside multiprocess mode."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create the multiprocess folder and remove files left by an earlier run.

    Call it in the parent before any worker process starts, then export
    ``PROMETHEUS_MULTIPROC_DIR=<path>`` so children (which import prometheus_client fresh) see it.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return folder
