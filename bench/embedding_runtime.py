"""Embedding runtimes side by side: ``MEMORY_EMBEDDING_BACKEND`` = torch, onnx, onnx-int8.

For each backend it loads the packaged all-MiniLM-L6-v2 (the ONNX ones exported here into
``--cache-dir`` on the first run, ``service/embedding/onnx_runtime.py``) and reports:

- ``texts_per_s``: ``--count`` LoCoMo turns (data order) in batches of ``--batch``, encoded the way
  the embedder's indexing lane calls the model;
- ``query_ms``: p50 / p95 of ``--queries`` LoCoMo questions encoded one at a time (the query lane);
- ``cosine_to_torch``: mean and min cosine of its vectors for the turns to the torch ones;
- ``load_s``: loading (with the export or quantization, when it was not cached yet).

Every backend runs with ``--threads`` intra-op threads (torch's ``set_num_threads``, ONNX
Runtime's ``intra_op_num_threads``). This is a measurement, not a test.

    python -m bench.embedding_runtime
    python -m bench.embedding_runtime --threads 4 --backends onnx,onnx-int8
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.locomo import DEFAULT_DATA, latency_summary, load_locomo
from bench.report import emit
from service.embedding.model_path import resolve_model
from service.embedding.onnx_runtime import BACKENDS
from service.embedding.sentence_transformer import SentenceEncoder, load_model

log = logging.getLogger("bench.embedding_runtime")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / "bench" / ".cache" / "models"


def corpus(path: Path, count: int, queries: int) -> tuple[list[str], list[str]]:
    """The first ``count`` non-empty turns and the first ``queries`` questions of the data."""
    conversations = load_locomo(path)
    turns = [turn.text for conv in conversations for turn in conv.turns if turn.text.strip()]
    questions = [question.question for conv in conversations for question in conv.questions]
    if len(turns) < count or len(questions) < queries:
        raise SystemExit(f"{path} has {len(turns)} turns and {len(questions)} questions; fewer than asked")
    return turns[:count], questions[:queries]


def encode(model: SentenceEncoder, texts: list[str]) -> np.ndarray:
    """One call as the embedder's lane makes it (``service/embedding/sentence_transformer.py``)."""
    array: np.ndarray = model.encode(
        texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return array


def measure(
    backend: str, texts: list[str], queries: list[str], *, batch: int, threads: int, cache_dir: Path
) -> tuple[dict[str, Any], np.ndarray]:
    started = time.perf_counter()
    model = load_model(resolve_model(None), threads=threads, backend=backend, cache_dir=cache_dir)  # type: ignore[arg-type]
    load_s = time.perf_counter() - started
    encode(model, texts[:batch])  # warm up: first-run allocations, thread pools
    for query in queries[:5]:
        encode(model, [query])

    started = time.perf_counter()
    vectors = np.concatenate([encode(model, texts[i : i + batch]) for i in range(0, len(texts), batch)])
    batched_s = time.perf_counter() - started

    samples_ms = []
    for query in queries:
        started = time.perf_counter()
        encode(model, [query])
        samples_ms.append((time.perf_counter() - started) * 1000)
    latency = latency_summary(samples_ms)
    del model
    gc.collect()
    result = {
        "backend": backend,
        "load_s": round(load_s, 2),
        "texts_per_s": round(len(texts) / batched_s, 1),
        "query_ms": {"p50": round(latency["p50"], 2), "p95": round(latency["p95"], 2)},
    }
    return result, vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedding_runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="locomo_dev.json")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--count", type=int, default=2000, help="turns encoded in batches")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200, help="questions encoded one at a time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the ONNX exports are kept")
    parser.add_argument("--out", type=Path, help="write the result JSON here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(BACKENDS)}")

    texts, queries = corpus(args.data, args.count, args.queries)
    options = {"batch": args.batch, "threads": args.threads, "cache_dir": args.cache_dir}
    results: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    for backend in ["torch", *[b for b in backends if b != "torch"]]:  # torch first: the reference vectors
        log.info("measuring %s", backend)
        result, vectors = measure(backend, texts, queries, **options)
        if reference is None:
            reference = vectors
        cosines = (vectors * reference).sum(axis=1)
        result["cosine_to_torch"] = {"mean": round(float(cosines.mean()), 5), "min": round(float(cosines.min()), 5)}
        if backend in backends:
            results.append(result)
        log.info("%s", result)
    summary = {
        "texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "batch": args.batch,
        "queries": len(queries),
        "threads": args.threads,
        "results": results,
    }
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
