"""SentenceTransformerEmbedder: batching across requests, lifecycle, and the real MiniLM model.

Tests of the batching machinery use a tiny fake model (fast, no torch); the tests marked
``model`` load the real packaged all-MiniLM-L6-v2 once for the module.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest

from service.embedding.model_path import resolve_model
from service.embedding.sentence_transformer import (
    EmbedderClosedError,
    SentenceEncoder,
    SentenceTransformerEmbedder,
    load_model,
)
from service.storage.ports import Embedder

CLOSE_TIMEOUT = 30.0


class FakeModel:
    """Maps each text to a one-hot-ish vector from its length; records every batch it sees."""

    def __init__(self, dimension: int = 8, gate: threading.Event | None = None, fail_on: str | None = None) -> None:
        self.dimension = dimension
        self.batches: list[list[str]] = []
        self.gate = gate
        self.fail_on = fail_on
        self.entered = threading.Event()

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, inputs: list[str], /, **kwargs: Any) -> np.ndarray:
        assert kwargs["normalize_embeddings"] is True
        self.batches.append(list(inputs))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(CLOSE_TIMEOUT)
        if self.fail_on is not None and self.fail_on in inputs:
            raise RuntimeError("model exploded")
        return np.stack([self.vector(text) for text in inputs])

    def vector(self, text: str) -> np.ndarray:
        out = np.zeros(self.dimension, dtype=np.float32)
        out[len(text) % self.dimension] = 1.0
        return out


class BatchLog:
    """An ``on_batch`` hook that remembers (count, seconds) of every batch."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def __call__(self, count: int, seconds: float) -> None:
        self.calls.append((count, seconds))


async def _started(model: SentenceEncoder, **kwargs: Any) -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder(model, **kwargs)
    await embedder.start()
    return embedder


async def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Bounded poll for a condition set by another thread or task."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


class TestIndexingInstances:
    async def test_a_second_instance_takes_the_next_batch_while_the_first_runs(self) -> None:
        gate = threading.Event()
        first, second = FakeModel(gate=gate), FakeModel()
        embedder = await _started(first, more_models=[second])
        assert embedder.models[0] == (first, second)
        held = asyncio.create_task(embedder.embed(["held by the first"]))
        await _wait_for(first.entered.is_set)
        async with asyncio.timeout(10):
            assert await embedder.embed(["next"]) == [second.vector("next").tolist()]
        assert not held.done()
        gate.set()
        assert await held == [first.vector("held by the first").tolist()]
        await embedder.close()

    def test_instances_of_another_dimension_are_refused(self) -> None:
        with pytest.raises(ValueError, match="dimension"):
            SentenceTransformerEmbedder(FakeModel(dimension=8), more_models=[FakeModel(dimension=4)])


class PriorityModel(FakeModel):
    """Records the nice value of the thread each batch runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.priorities: list[int] = []

    def encode(self, inputs: list[str], /, **kwargs: Any) -> np.ndarray:
        self.priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().encode(inputs, **kwargs)


@pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are per thread on Linux only")
class TestBackgroundPriority:
    async def test_the_indexing_lane_runs_below_the_query_lane(self) -> None:
        normal = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        indexing, another, queries = PriorityModel(), PriorityModel(), PriorityModel()
        embedder = await _started(indexing, more_models=[another], query_model=queries, background_nice=3)
        await asyncio.gather(embedder.embed(["a"]), embedder.embed_query(["b"]))
        await asyncio.gather(*(embedder.embed([f"text {i}"]) for i in range(8)))
        await embedder.close()
        assert set(indexing.priorities + another.priorities) == {min(19, normal + 3)}
        assert queries.priorities == [normal]
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == normal  # the loop's thread keeps its own

    async def test_zero_keeps_the_normal_priority(self) -> None:
        normal = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        model = PriorityModel()
        embedder = await _started(model, background_nice=0)
        await embedder.embed(["a"])
        await embedder.close()
        assert model.priorities == [normal]


class TestQueryLane:
    async def test_a_query_is_served_while_an_indexing_batch_is_running(self) -> None:
        gate = threading.Event()
        bulk, queries = FakeModel(gate=gate), FakeModel()
        embedder = await _started(bulk, query_model=queries)
        assert embedder.has_query_lane
        indexing = asyncio.create_task(embedder.embed(["a long document chunk"]))
        await _wait_for(bulk.entered.is_set)  # the indexing batch holds the bulk lane's thread
        async with asyncio.timeout(10):
            assert await embedder.embed_query(["query"]) == [queries.vector("query").tolist()]
        assert not indexing.done() and queries.batches == [["query"]]
        gate.set()
        assert await indexing == [bulk.vector("a long document chunk").tolist()]
        await embedder.close()

    async def test_without_a_query_model_queries_share_the_indexing_lane(self) -> None:
        model = FakeModel()
        embedder = await _started(model)
        assert not embedder.has_query_lane
        assert await embedder.embed_query(["abc"]) == [model.vector("abc").tolist()]
        assert model.batches == [["abc"]]
        await embedder.close()

    async def test_a_query_model_of_another_dimension_is_refused(self) -> None:
        with pytest.raises(ValueError, match="dimension"):
            SentenceTransformerEmbedder(FakeModel(dimension=8), query_model=FakeModel(dimension=4))


class TestBatching:
    async def test_satisfies_the_embedder_port(self) -> None:
        embedder: Embedder = await _started(FakeModel(dimension=5))
        assert embedder.dimension == 5
        await embedder.close()

    async def test_empty_input_does_not_touch_the_model(self) -> None:
        model = FakeModel()
        embedder = SentenceTransformerEmbedder(model)  # not even started
        assert await embedder.embed([]) == []
        assert model.batches == []

    async def test_embed_before_start_raises(self) -> None:
        with pytest.raises(EmbedderClosedError):
            await SentenceTransformerEmbedder(FakeModel()).embed(["x"])

    async def test_concurrent_requests_share_a_batch_and_get_their_own_vectors(self) -> None:
        model, log = FakeModel(), BatchLog()
        embedder = await _started(model, batch_size=64, on_batch=log)
        texts = ["a" * n for n in range(1, 9)]
        results = await asyncio.gather(*(embedder.embed([text]) for text in texts))
        await embedder.close()
        assert len(model.batches) < len(texts)
        assert sum(count for count, _ in log.calls) == len(texts)
        for text, vectors in zip(texts, results, strict=True):
            assert vectors == [model.vector(text).tolist()]

    async def test_a_large_request_is_split_into_batches_and_kept_in_order(self) -> None:
        model, log = FakeModel(), BatchLog()
        embedder = await _started(model, batch_size=4, queue_size=3, on_batch=log)
        texts = ["x" * n for n in range(10)]
        vectors = await embedder.embed(texts)
        await embedder.close()
        assert vectors == [model.vector(text).tolist() for text in texts]
        assert all(len(batch) <= 4 for batch in model.batches)
        assert [count for count, _ in log.calls] == [len(batch) for batch in model.batches]
        assert all(seconds >= 0 for _, seconds in log.calls)

    async def test_a_model_error_fails_only_the_requests_in_that_batch(self) -> None:
        model = FakeModel(fail_on="boom")
        embedder = await _started(model, batch_size=1)
        bad, good = await asyncio.gather(embedder.embed(["boom"]), embedder.embed(["fine"]), return_exceptions=True)
        assert isinstance(bad, RuntimeError) and "exploded" in str(bad)
        assert good == [model.vector("fine").tolist()]
        assert await embedder.embed(["still serving"]) == [model.vector("still serving").tolist()]
        await embedder.close()

    async def test_a_failing_on_batch_hook_does_not_fail_requests(self) -> None:
        def broken(count: int, seconds: float) -> None:
            raise ValueError("metrics down")

        embedder = await _started(FakeModel(), on_batch=broken)
        assert len(await embedder.embed(["a", "b"])) == 2
        await embedder.close()

    async def test_close_fails_in_flight_and_queued_requests_without_hanging(self) -> None:
        gate = threading.Event()
        model = FakeModel(gate=gate)
        embedder = await _started(model, batch_size=2)
        tasks = [asyncio.create_task(embedder.embed([f"text {i}"])) for i in range(6)]
        await _wait_for(model.entered.is_set)  # the first batch is inside the model, the rest queued
        closing = asyncio.create_task(embedder.close())
        await asyncio.sleep(0)
        gate.set()  # close() waits for the worker thread, which finishes its batch
        await asyncio.wait_for(closing, CLOSE_TIMEOUT)
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), CLOSE_TIMEOUT)
        assert all(isinstance(result, EmbedderClosedError) for result in results)
        assert len(model.batches) == 1
        with pytest.raises(EmbedderClosedError):
            await embedder.embed(["after close"])

    async def test_close_releases_requests_blocked_on_a_full_queue(self) -> None:
        loop = asyncio.get_running_loop()
        unhandled: list[dict[str, Any]] = []
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
        try:
            gate = threading.Event()
            model = FakeModel(gate=gate)
            embedder = await _started(model, batch_size=1, queue_size=1)
            task = asyncio.create_task(embedder.embed([f"t{i}" for i in range(5)]))
            await _wait_for(model.entered.is_set)
            closing = asyncio.create_task(embedder.close())
            gate.set()
            await asyncio.wait_for(closing, CLOSE_TIMEOUT)
            with pytest.raises(EmbedderClosedError):
                await asyncio.wait_for(task, CLOSE_TIMEOUT)
            del task, closing, embedder
            gc.collect()
        finally:
            loop.set_exception_handler(previous)
        assert unhandled == []  # no "Future exception was never retrieved"

    async def test_a_cancelled_request_is_skipped(self) -> None:
        gate = threading.Event()
        model = FakeModel(gate=gate)
        embedder = await _started(model, batch_size=1)
        first = asyncio.create_task(embedder.embed(["first"]))
        await _wait_for(model.entered.is_set)
        doomed = asyncio.create_task(embedder.embed(["doomed"]))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        assert await first == [model.vector("first").tolist()]
        assert await embedder.embed(["after"]) == [model.vector("after").tolist()]
        await embedder.close()
        assert doomed.cancelled()
        assert ["doomed"] not in model.batches

    async def test_close_is_idempotent_and_start_after_close_fails(self) -> None:
        embedder = await _started(FakeModel())
        await embedder.close()
        await embedder.close()
        with pytest.raises(EmbedderClosedError):
            await embedder.start()


# --- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def minilm() -> SentenceEncoder:
    return await asyncio.to_thread(load_model, resolve_model(None))


@pytest.fixture
async def real(minilm: SentenceEncoder) -> AsyncIterator[SentenceTransformerEmbedder]:
    embedder = await _started(minilm)
    yield embedder
    await embedder.close()


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.dot(a, b))


@pytest.mark.model
class TestRealModel:
    async def test_dimension_and_unit_length(self, real: SentenceTransformerEmbedder) -> None:
        vectors = await real.embed(["I love dogs", "", "a much longer sentence about the weather in Lisbon today"])
        assert real.dimension == 384
        for vector in vectors:
            assert len(vector) == 384
            assert all(isinstance(value, float) for value in vector)
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)

    async def test_similar_meaning_is_closer(self, real: SentenceTransformerEmbedder) -> None:
        dogs, puppies, stocks = await real.embed(["I love dogs", "puppies are my favourite", "the stock market fell"])
        assert _cos(dogs, puppies) > _cos(dogs, stocks) + 0.2

    async def test_concurrent_single_text_calls_are_batched(self, minilm: SentenceEncoder) -> None:
        log = BatchLog()
        embedder = await _started(minilm, batch_size=64, on_batch=log)
        texts = [f"message {i}: remind me to water the plants on day {i}" for i in range(40)]
        sequential = [(await embedder.embed([text]))[0] for text in texts]
        log.calls.clear()
        concurrent = await asyncio.gather(*(embedder.embed([text]) for text in texts))
        await embedder.close()
        assert len(log.calls) < len(texts)
        assert sum(count for count, _ in log.calls) == len(texts)
        for alone, together in zip(sequential, concurrent, strict=True):
            assert np.allclose(alone, together[0], atol=1e-5)
        assert not np.allclose(concurrent[0][0], concurrent[1][0], atol=1e-5)

    async def test_close_with_requests_in_flight_does_not_hang(self, minilm: SentenceEncoder) -> None:
        log = BatchLog()
        embedder = await _started(minilm, batch_size=8, on_batch=log)
        tasks = [asyncio.create_task(embedder.embed([f"pending request number {i}"])) for i in range(64)]
        await asyncio.sleep(0)  # let every request reach the queue
        await asyncio.wait_for(embedder.close(), CLOSE_TIMEOUT)
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), CLOSE_TIMEOUT)
        failed = [r for r in results if isinstance(r, EmbedderClosedError)]
        served = [r for r in results if isinstance(r, list)]
        assert len(failed) + len(served) == len(tasks)
        assert failed

    async def test_async_factory_loads_the_packaged_model(self) -> None:
        embedder = await SentenceTransformerEmbedder.load(None, batch_size=4)
        await embedder.start()
        [vector] = await embedder.embed(["hello"])
        await embedder.close()
        assert embedder.dimension == len(vector) == 384
