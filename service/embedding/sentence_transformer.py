"""Dense embeddings from a sentence-transformers model, batched across concurrent requests.

A lane puts each text on a bounded queue and awaits a future. A consumer task takes up to
``batch_size`` queued texts, whichever requests they came from, runs the model in its own
worker thread so the event loop stays free, and hands every request its own vectors; a lane of
several model instances has a consumer and a thread for each, taking batches from the one queue.

The embedder has two lanes: ``embed`` (indexing, deduplication: throughput) and ``embed_query``
(a search's query: latency). Given a second model instance, the query lane runs it in its own
thread, so a query is encoded at once, beside an indexing batch, instead of waiting behind
batches that take a few hundred milliseconds each; two instances, because a tokenizer must not
be shared between threads. Without one, queries share the indexing lane. The indexing lane's
threads may run at a lower CPU priority than the rest of the process (``background_nice``).
The caller owns the lifecycle: ``start`` after construction, ``close`` at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from service.cpu import lower_this_thread, usable_cpus
from service.embedding.model_path import resolve_model

if TYPE_CHECKING:
    from service.embedding.onnx_runtime import Backend, BackendChoice

__all__ = ["EmbedderClosedError", "SentenceEncoder", "SentenceTransformerEmbedder", "load_model"]

log = logging.getLogger(__name__)

BatchHook = Callable[[int, float], None]

#: Indexing instances when the setting is unset and the machine has more CPUs (about 140 MB each).
DEFAULT_MAX_STREAMS = 4


class EmbedderClosedError(RuntimeError):
    """The embedder is not running (never started, or closed) so the request was not served."""


class SentenceEncoder(Protocol):
    """The part of ``SentenceTransformer`` the embedder uses (a fake can stand in for tests)."""

    def encode(self, inputs: list[str], /, **kwargs: Any) -> Any: ...


def load_model(
    name_or_path: str,
    *,
    threads: int | None = None,
    backend: BackendChoice = "torch",
    cache_dir: Path | None = None,
) -> SentenceEncoder:
    """Load a sentence-transformers model on the CPU (blocking: seconds; call it in a thread).

    ``backend`` is ``MEMORY_EMBEDDING_BACKEND``: ``torch`` runs the model with
    sentence-transformers; ``onnx`` and ``onnx-int8`` run it on ONNX Runtime from an export made
    here and kept in ``cache_dir``, and ``openvino`` runs that export on OpenVINO
    (``service/embedding/onnx_runtime.py``); ``auto`` is the first of ``openvino``, ``onnx`` and
    ``torch`` that loads (with a warning saying why for each one that did not).
    """
    threads = threads or usable_cpus()
    match backend:
        case "auto":
            from service.embedding.onnx_runtime import EmbeddingBackendError

            missing: list[str] = []
            for exported in _AUTO_ORDER if cache_dir is not None else ():
                try:
                    model = load_model(name_or_path, threads=threads, backend=exported, cache_dir=cache_dir)
                except (EmbeddingBackendError, OSError) as exc:
                    missing.append(f"{exported} is unavailable ({exc})")
                    continue
                if missing:
                    log.warning("MEMORY_EMBEDDING_BACKEND=auto: %s; running the model on %s", "; ".join(missing), exported)
                return model
            log.warning("MEMORY_EMBEDDING_BACKEND=auto: %s; running the model on torch", "; ".join(missing) or "no cache_dir for an export")
            return load_model(name_or_path, threads=threads, backend="torch")
        case "torch":
            from sentence_transformers import SentenceTransformer

            _set_torch_threads(threads)
            return SentenceTransformer(name_or_path, device="cpu")
        case "onnx" | "onnx-int8" | "openvino":
            from service.embedding.onnx_runtime import OnnxEncoder

            if cache_dir is None:
                raise ValueError("the ONNX backends need a cache_dir (MEMORY_EMBEDDING_CACHE_DIR) for the exported model")
            return OnnxEncoder.load(name_or_path, backend=backend, threads=threads, cache_dir=cache_dir)
        case _:
            raise ValueError(f"MEMORY_EMBEDDING_BACKEND must be one of auto, torch, onnx, onnx-int8, openvino, not {backend!r}")


# What ``auto`` tries before torch, fastest first (measured in ``bench/embedding_runtime.py``).
_AUTO_ORDER: tuple[Backend, ...] = ("openvino", "onnx")


def _set_torch_threads(count: int) -> None:
    """Torch's intra-op thread count: one for the whole process."""
    import torch

    torch.set_num_threads(count)


def runtime_of(model: SentenceEncoder) -> Backend:
    """The runtime a loaded model runs on: an ONNX encoder's backend, else torch."""
    return getattr(model, "backend", "torch")


def _dimension_of(model: SentenceEncoder) -> int:
    """The model's output dimension (``get_embedding_dimension`` on sentence-transformers >= 5)."""
    getter = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension")
    dimension = getter()
    if not isinstance(dimension, int) or dimension <= 0:
        raise ValueError(f"embedding model reports no usable dimension ({dimension!r})")
    return dimension


@dataclass(eq=False)
class _Request:
    """One ``embed`` call: its future and the vectors gathered so far."""

    future: asyncio.Future[list[list[float]]]
    vectors: list[list[float] | None]
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = len(self.vectors)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def abandon(self) -> None:
        """The caller gave up: cancel the future, or mark its error as seen so none is logged."""
        if not self.future.done():
            self.future.cancel()
        elif not self.future.cancelled():
            self.future.exception()


@dataclass(frozen=True, slots=True)
class _Item:
    """One text of one request, waiting on the queue."""

    request: _Request
    index: int
    text: str


class SentenceTransformerEmbedder:
    """An ``Embedder`` with an indexing lane and (given ``query_model``) a query lane.

    ``more_models`` are further instances for the indexing lane: each runs batches on its own
    thread, beside the others. ``background_nice`` lowers the CPU priority of the indexing
    lane's threads (``service/cpu.py``), so that a query's encoding, and the requests on the
    event loop, go ahead of indexing work when they compete for the CPUs."""

    def __init__(
        self,
        model: SentenceEncoder,
        *,
        batch_size: int = 64,
        queue_size: int = 1024,
        on_batch: BatchHook | None = None,
        query_model: SentenceEncoder | None = None,
        more_models: Sequence[SentenceEncoder] = (),
        background_nice: int = 0,
    ) -> None:
        self._bulk = _Lane(
            [model, *more_models], "embedder",
            batch_size=batch_size, queue_size=queue_size, on_batch=on_batch, nice=background_nice,
        )
        self._query = self._bulk
        if query_model is not None:
            if _dimension_of(query_model) != self._bulk.dimension:
                raise ValueError("the query model's dimension differs from the model's")
            self._query = _Lane([query_model], "query-embedder", batch_size=batch_size, queue_size=queue_size, on_batch=on_batch)

    @classmethod
    async def load(
        cls,
        name: str | None = None,
        *,
        batch_size: int = 64,
        queue_size: int = 1024,
        on_batch: BatchHook | None = None,
        threads: int | None = None,
        query_lane: bool = True,
        backend: BackendChoice = "torch",
        cache_dir: Path | None = None,
        index_streams: int | None = None,
        query_threads: int = 1,
        background_nice: int = 0,
    ) -> Self:
        """Resolve and load the model in a thread, as many times as the lanes need; still to be started.

        On an exported runtime (ONNX Runtime, OpenVINO: threads are a session's) the indexing lane
        runs ``index_streams`` instances (unset: one a CPU, at most ``DEFAULT_MAX_STREAMS``: each
        holds its own copy of the model) that share the ``threads`` (each at least one), and the
        query lane one of ``query_threads``. Two single-thread instances side by side encode more
        than one of two threads (290 against 231-273 texts/s on 2 cores), and
        each runs wholly on its lane's own thread, whose priority ``background_nice`` lowers. A
        query (a sentence) is encoded as fast on one thread as on two, for half the CPU (search
        p95 22.6 against 22.3 ms quiet; 47.9 against 56.8 ms beside two writers). On torch,
        whose thread count is the process's, each lane runs one instance, on ``threads``."""
        path = resolve_model(name)
        total = threads or usable_cpus()
        streams = index_streams or min(usable_cpus(), DEFAULT_MAX_STREAMS)
        shared = max(1, total // streams)
        first = await asyncio.to_thread(partial(load_model, path, threads=shared, backend=backend, cache_dir=cache_dir))
        runtime = runtime_of(first)  # ``auto`` is decided once, by the first load

        def another(count: int) -> Awaitable[SentenceEncoder]:
            return asyncio.to_thread(partial(load_model, path, threads=count, backend=runtime, cache_dir=cache_dir))

        if runtime == "torch":
            indexing = [first]
            query_model = await another(total) if query_lane else None
            _set_torch_threads(total)
        else:
            indexing = [first, *[await another(shared) for _ in range(streams - 1)]]
            query_model = await another(query_threads) if query_lane else None
        log.info("embedding model %s on %s (%d indexing instance(s))", path, runtime, len(indexing))
        return cls(
            indexing[0], batch_size=batch_size, queue_size=queue_size, on_batch=on_batch,
            query_model=query_model, more_models=indexing[1:], background_nice=background_nice,
        )

    @property
    def dimension(self) -> int:
        return self._bulk.dimension

    @property
    def has_query_lane(self) -> bool:
        return self._query is not self._bulk

    @property
    def models(self) -> tuple[tuple[SentenceEncoder, ...], tuple[SentenceEncoder, ...]]:
        """The model instances of the indexing lane, and of the query lane (the same without one)."""
        return self._bulk.models, self._query.models

    async def start(self) -> None:
        await self._bulk.start()
        await self._query.start()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, in order, on the indexing lane."""
        return await self._bulk.embed(texts)

    async def embed_query(self, texts: Sequence[str]) -> list[list[float]]:
        """Like ``embed``, on the query lane: not queued behind indexing work."""
        return await self._query.embed(texts)

    async def close(self) -> None:
        await self._query.close()
        await self._bulk.close()


class _Lane:
    """One queue, and for each of its models one batching consumer task and one worker thread
    (at ``nice`` steps below the normal priority)."""

    def __init__(
        self,
        models: Sequence[SentenceEncoder],
        name: str,
        *,
        batch_size: int = 64,
        queue_size: int = 1024,
        on_batch: BatchHook | None = None,
        nice: int = 0,
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be at least 1")
        if not models:
            raise ValueError("a lane needs a model")
        self.models = tuple(models)
        self._name = name
        self.dimension = _dimension_of(self.models[0])
        if any(_dimension_of(m) != self.dimension for m in self.models[1:]):
            raise ValueError("the lane's models differ in dimension")
        self._batch_size = batch_size
        self._on_batch = on_batch
        self._nice = nice
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._executors: list[ThreadPoolExecutor] = []
        self._consumers: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self) -> None:
        """Start the worker threads and their batching consumer tasks."""
        if self._closed:
            raise EmbedderClosedError("embedder was closed; create a new one")
        if self._consumers:
            return
        for index, model in enumerate(self.models):
            executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"{self._name}-{index}", initializer=lower_this_thread, initargs=(self._nice,)
            )
            self._executors.append(executor)
            self._consumers.append(asyncio.create_task(self._consume(model, executor), name=f"{self._name}-{index}-batcher"))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, in order; waits when the queue is full."""
        if not texts:
            return []
        self._ensure_running()
        request = _Request(asyncio.get_running_loop().create_future(), [None] * len(texts))
        try:
            for index, text in enumerate(texts):
                await self._queue.put(_Item(request, index, text))
                self._ensure_running()
        except BaseException:
            request.abandon()
            raise
        return await request.future

    async def close(self) -> None:
        """Stop the consumers, fail every pending request, and wait for the worker threads."""
        if self._closed:
            return
        self._closed = True
        for consumer in self._consumers:
            consumer.cancel()
        for consumer in self._consumers:
            try:
                await consumer
            except asyncio.CancelledError:
                pass
        while not self._queue.empty():
            item = self._queue.get_nowait()
            item.request.fail(EmbedderClosedError("embedder closed before this request was served"))
        for executor in self._executors:
            await asyncio.to_thread(executor.shutdown, wait=True)

    def _ensure_running(self) -> None:
        if self._closed or not self._consumers or any(consumer.done() for consumer in self._consumers):
            raise EmbedderClosedError("embedder is not running (call start(), or it was closed)")

    async def _consume(self, model: SentenceEncoder, executor: ThreadPoolExecutor) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._serve(model, executor, batch)
            except asyncio.CancelledError:
                for item in batch:
                    item.request.fail(EmbedderClosedError("embedder closed while this request was being embedded"))
                raise

    async def _serve(self, model: SentenceEncoder, executor: ThreadPoolExecutor, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.request.future.done()]
        if not live:
            return
        loop = asyncio.get_running_loop()
        try:
            vectors, seconds = await loop.run_in_executor(executor, _encode, model, [i.text for i in live])
        except Exception as exc:
            log.exception("embedding batch of %d texts failed", len(live))
            for item in live:
                item.request.fail(exc)
            return
        for item, vector in zip(live, vectors, strict=True):
            request = item.request
            if request.future.done():
                continue
            request.vectors[item.index] = vector
            request.remaining -= 1
            if request.remaining == 0:
                request.future.set_result([v for v in request.vectors if v is not None])
        self._report(len(live), seconds)

    def _report(self, count: int, seconds: float) -> None:
        if self._on_batch is None:
            return
        try:
            self._on_batch(count, seconds)
        except Exception:
            log.exception("on_batch hook failed")


def _encode(model: SentenceEncoder, texts: list[str]) -> tuple[list[list[float]], float]:
    """Run the model on one batch (in a lane's worker thread); vectors and seconds taken."""
    started = time.perf_counter()
    array = model.encode(
        texts,
        batch_size=len(texts),
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    vectors: list[list[float]] = array.tolist()
    return vectors, time.perf_counter() - started
