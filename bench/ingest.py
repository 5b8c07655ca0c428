"""Sustained indexing: posted messages until searchable, beside the raw model's rate.

It first measures the embedding model alone in this process, on the runtime the service will run
(``MEMORY_EMBEDDING_BACKEND``, default ``auto``, resolved here the way the service resolves it),
in batches of 64 (the indexing lane's), on the texts it is about to post: as one instance of
``--threads`` threads, and as that many one-thread instances side by side (the service's indexing
lane on ONNX Runtime and OpenVINO); the faster is the raw rate.
It then frees the model, starts a throw-away embedded service (SQLite, in-process buffer, Qdrant
Edge in a temporary folder; keys on; ``bench/load.py`` starts it) and posts ``--messages``
messages: the LoCoMo development split's turns, copied for as many users as it takes (each copy
of a conversation is a new user with its own sessions), ``--clients`` sessions at a time, each
session's turns in order, ``--batch`` messages a request. It reports:

- ``posted_per_s``: messages per second from the first POST to the last answer;
- ``searchable_per_s``: messages per second from the first POST until no indexing job is pending
  (``pending_by_kind`` of ``GET /v1/admin/queue``: every message embedded and written to the index,
  dense and BM25): the sustained rate;
- ``drained_per_s``: the same until the whole queue is empty (the digests and profiles done too);
- ``raw_texts_per_s`` and ``share_of_raw`` (``searchable_per_s`` / ``raw_texts_per_s``);
- the queue's depth (all, and indexing) and oldest job's age sampled every second, and the server's
  CPU seconds and the machine's CPU shares until the messages were searchable.

This is a measurement, not a test.

    python -m bench.ingest
    MEMORY_EMBEDDING_BACKEND=onnx python -m bench.ingest --messages 6000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.load import (
    cpu_shares,
    free_port,
    parse_setting,
    process_cpu_seconds,
    read_cpu_times,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from bench.locomo import DEFAULT_DATA, Conversation, Turn, batched, load_locomo, message_payload
from bench.report import emit

log = logging.getLogger("bench.ingest")

RAW_BATCH = 64  # the indexing lane's batch (MEMORY_EMBEDDING_BATCH_SIZE's default)
RAW_TEXTS = 2000  # texts the raw model is timed on
INDEXING = ("sync_memory", "sync_document")  # the job kinds that make a message searchable


@dataclass(frozen=True, slots=True)
class SessionPlan:
    user_id: str
    session_id: str
    conversation: Conversation
    turns: list[Turn]


def session_plans(conversations: Sequence[Conversation], run_id: str, messages: int) -> list[SessionPlan]:
    """Sessions whose turns add up to ``messages`` (the last one cut short): conversation copies,
    each a user of its own."""
    plans: list[SessionPlan] = []
    left = messages
    for copy in range(messages):  # bounded: every copy holds at least one turn
        for conversation in conversations:
            user = f"{run_id}-u{copy}-{conversation.sample_id}"
            for number, turns in conversation.sessions().items():
                taken = [turn for turn in turns if turn.text.strip()][:left]
                if taken:
                    plans.append(SessionPlan(user, f"{user}-s{number}", conversation, taken))
                    left -= len(taken)
                if left == 0:
                    return plans
    return plans


def plan_texts(plans: Sequence[SessionPlan], count: int) -> list[str]:
    texts = [message_payload(turn, plan.conversation)["content"] for plan in plans for turn in plan.turns]
    return texts[:count]


def raw_rate(texts: list[str], backend: str, threads: int, cache_dir: Path) -> dict[str, Any]:
    """The model alone on ``texts`` in batches of 64, as the indexing lane calls it, in two shapes:
    one instance of ``threads`` threads, and ``threads`` instances of one thread side by side (each
    on half of the batches when there are two; the service's indexing lane on an exported runtime).
    ``texts_per_s`` is the faster of the two: the rate the service is held to."""
    from service.embedding.model_path import resolve_model
    from service.embedding.sentence_transformer import load_model, runtime_of

    path = resolve_model(None)
    batches = [texts[start : start + RAW_BATCH] for start in range(0, len(texts), RAW_BATCH)]
    one = load_model(path, threads=threads, backend=backend, cache_dir=cache_dir)  # type: ignore[arg-type]
    runtime = runtime_of(one)
    shapes = {f"1x{threads}": _timed_rate([one], batches)}
    del one
    if runtime != "torch" and threads > 1:  # torch's threads are the process's: no side-by-side shape
        instances = [load_model(path, threads=1, backend=runtime, cache_dir=cache_dir) for _ in range(threads)]
        shapes[f"{threads}x1"] = _timed_rate(instances, batches)
        del instances
    gc.collect()  # the service about to start gets the memory and threads
    return {"runtime": runtime, "texts": len(texts), "shapes": shapes, "texts_per_s": max(shapes.values())}


def _timed_rate(models: Sequence[Any], batches: list[list[str]]) -> float:
    """Texts a second of ``models`` encoding ``batches`` side by side, one thread each (after one
    warm-up batch each)."""
    from concurrent.futures import ThreadPoolExecutor

    def encode(model: Any, batch: list[str]) -> None:
        model.encode(batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def run(index: int) -> None:
        for batch in batches[index :: len(models)]:
            encode(models[index], batch)

    for model in models:
        encode(model, batches[0])
    with ThreadPoolExecutor(len(models)) as pool:
        started = time.perf_counter()
        list(pool.map(run, range(len(models))))
        seconds = time.perf_counter() - started
    return round(sum(map(len, batches)) / seconds, 1)


def indexing_pending(queue: dict[str, Any]) -> int:
    return sum(queue.get("pending_by_kind", {}).get(kind, 0) for kind in INDEXING)


async def wait_until(http: httpx.AsyncClient, done: Callable[[dict[str, Any]], bool]) -> None:
    while not done((await http.get("/v1/admin/queue")).json()):
        await asyncio.sleep(0.2)


class Sampler:
    """The queue's depth and oldest age, read every second while the run goes on."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self.samples: list[dict[str, float]] = []

    async def run(self, started: float) -> None:
        while True:
            response = await self._http.get("/v1/admin/queue")
            if response.status_code == 200:
                body = response.json()
                self.samples.append({
                    "t": round(time.perf_counter() - started, 1),
                    "pending": body["pending"],
                    "indexing": indexing_pending(body),
                    "oldest_s": round(body.get("oldest_pending_age_seconds") or 0.0, 1),
                })
            await asyncio.sleep(1.0)


async def post_all(base_url: str, key: str, plans: Sequence[SessionPlan], clients: int, batch: int, pid: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(120.0)) as http:
        pending: Iterator[SessionPlan] = iter(plans)
        requests = 0

        async def client() -> None:
            nonlocal requests
            for plan in pending:
                created = await http.post("/v1/sessions", json={"id": plan.session_id, "user_id": plan.user_id})
                created.raise_for_status()
                for part in batched(plan.turns, batch):
                    answer = await http.post(
                        f"/v1/sessions/{plan.session_id}/messages",
                        json={"messages": [message_payload(turn, plan.conversation) for turn in part]},
                    )
                    answer.raise_for_status()
                    requests += 1

        cpu_before, server_before = read_cpu_times(), process_cpu_seconds(pid)
        started = time.perf_counter()
        sampler = Sampler(http)
        sampling = asyncio.create_task(sampler.run(started))
        await asyncio.gather(*(client() for _ in range(clients)))
        posted = time.perf_counter() - started
        await wait_until(http, lambda queue: indexing_pending(queue) == 0)
        searchable = time.perf_counter() - started
        cpu_after, server_after = read_cpu_times(), process_cpu_seconds(pid)
        await wait_until(http, lambda queue: queue["pending"] == 0)
        drained = time.perf_counter() - started
        sampling.cancel()
    count = sum(len(plan.turns) for plan in plans)
    return {
        "messages": count,
        "sessions": len(plans),
        "requests": requests,
        "posted_s": round(posted, 2),
        "posted_per_s": round(count / posted, 1),
        "searchable_s": round(searchable, 2),
        "searchable_per_s": round(count / searchable, 1),
        "drained_s": round(drained, 2),
        "drained_per_s": round(count / drained, 1),
        "server_cpu_s": round(server_after - server_before, 2) if server_after is not None and server_before is not None else None,
        "machine_cpu": cpu_shares(cpu_before, cpu_after),
        "queue": sampler.samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=12_000)
    parser.add_argument("--clients", type=int, default=4, help="sessions posted at a time")
    parser.add_argument("--batch", type=int, default=5, help="messages a request")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="the raw model's threads (the service uses every CPU)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, help="write the result JSON here too")
    parser.add_argument("--server-log", type=Path, help="keep the service's log here (default: dropped with its folder)")
    parser.add_argument("--log-level", default="WARNING", help="the service's MEMORY_LOG_LEVEL")
    parser.add_argument("--set", type=parse_setting, action="append", default=[], metavar="MEMORY_NAME=VALUE",
                        help="a setting for the service (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    run_id = f"ingest-{secrets.token_hex(4)}"
    plans = session_plans(load_locomo(args.data), run_id, args.messages)
    backend = os.environ.get("MEMORY_EMBEDDING_BACKEND", "auto")
    with tempfile.TemporaryDirectory(prefix="memsvc-ingest-") as folder:
        models = Path(os.environ.get("MEMORY_EMBEDDING_CACHE_DIR") or Path(folder) / "models")
        raw = raw_rate(plan_texts(plans, RAW_TEXTS), backend, args.threads, models)
        log.info("raw model: %s texts/s on %s", raw["texts_per_s"], raw["runtime"])
        key = "adm_" + secrets.token_urlsafe(24)
        extra = {"MEMORY_EMBEDDING_BACKEND": backend, "MEMORY_EMBEDDING_CACHE_DIR": str(models), "MEMORY_LOG_LEVEL": args.log_level}
        extra.update(args.set)
        server = start_server(server_env(Path(folder), key, extra), args.server_log or Path(folder) / "service.log", free_port())
        try:
            wait_ready(server)
            result = asyncio.run(post_all(server.url, key, plans, args.clients, args.batch, server.proc.pid))
        finally:
            stop_server(server)
    result["raw"] = raw
    result["share_of_raw"] = round(result["searchable_per_s"] / raw["texts_per_s"], 3)
    result["service"] = f"embedded (SQLite, in-process buffer, Qdrant Edge), MEMORY_EMBEDDING_BACKEND={backend}"
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
