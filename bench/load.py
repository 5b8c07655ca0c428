"""Load benchmark: a real memory-service under a mixed workload from concurrent clients.

For each backend set it starts ``memory-service serve`` as a child process on a free port of
127.0.0.1, waits for ``/readyz``, and lets ``--clients`` concurrent clients (one
``httpx.AsyncClient`` each, one request in flight per client) run a mixed workload for
``--seconds``:

- ``messages``: a batch of 1-3 chat messages into one of the client's sessions
- ``memories``: one long-term memory for the client's user
- ``search``:   ``POST /v1/memories/search`` with a question about something said earlier
- ``context``:  ``POST /v1/sessions/{id}/context`` with ``max_tokens`` 500

in the ``--mix`` proportions (default messages=40,memories=20,search=25,context=15). Before the
clock starts each client creates its sessions and posts one batch into each (not measured).

Backend sets: ``embedded`` (SQLite, in-process buffer, Qdrant Edge in a temporary folder) and
``servers`` (a scratch Postgres database, created and dropped by the benchmark; Redis at
``--redis-url``, whose keys of the run are deleted afterwards; qdrant-client's local mode, as no
Qdrant server is assumed). Both run by default, one after the other.

The report gives, per operation: count, throughput, p50/p95/p99 latency and errors (any non-2xx
answer or exception; the first error bodies are printed), plus totals and the CPU steal seen
during the run, as a Markdown table; ``--out`` writes the JSON. The exit code is 1 when any
request failed, 2 when a server could not be started. The load generator runs on the same
machine as the server, so it takes part of the CPU: numbers are for comparing runs, not limits.

    python bench/load.py
    python bench/load.py --backend embedded --seconds 20 --clients 8
    python bench/load.py --mix messages=70,search=30 --out bench/results/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("bench.load")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"

OPERATIONS: tuple[str, ...] = ("messages", "memories", "search", "context")
DEFAULT_MIX: dict[str, float] = {"messages": 0.40, "memories": 0.20, "search": 0.25, "context": 0.15}
BACKENDS: tuple[str, ...] = ("embedded", "servers")
CONTEXT_MAX_TOKENS = 500
SEARCH_LIMIT = 10
ERROR_SAMPLES = 5  # error bodies kept per operation
BODY_CHARS = 500  # of each error body
START_TIMEOUT_S = 180.0
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"  # the tests use db 15
REDIS_BUFFER_PREFIX = "memsvc:buf:"  # service.storage.buffer.redis.RedisBuffer's default
QDRANT_LOCAL = ":memory:"  # service.storage.factory.QDRANT_LOCAL (not imported: no service import)

# ---------------------------------------------------------------------------------------------
# Workload generation (pure; every choice comes from the client's seeded Random)
# ---------------------------------------------------------------------------------------------

PEOPLE = ("Maya", "Tom", "Priya", "Jonas", "Aiko", "Luis", "Grace", "Omar", "Elena", "Kwame")
PLACES = ("Lisbon", "Osaka", "Denver", "Tallinn", "Cape Town", "Montreal", "Porto", "Hanoi")
PETS = ("cat", "dog", "parrot", "rabbit", "tortoise")
PET_NAMES = ("Biscuit", "Pepper", "Mochi", "Ziggy", "Olive", "Juniper")
HOBBIES = ("bouldering", "pottery", "sourdough baking", "trail running", "chess", "salsa dancing")
FOODS = ("ramen", "tacos", "pad thai", "shakshuka", "pierogi", "mushroom risotto")
JOBS = ("nurse", "data analyst", "carpenter", "maths teacher", "product designer", "sous-chef")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
INSTRUMENTS = ("guitar", "cello", "piano", "drums", "ukulele")


@dataclass(frozen=True, slots=True)
class Fact:
    """Something a user says, and a question that asks about it later."""

    said: str
    question: str
    topic: str


FACTS: tuple[Fact, ...] = (
    Fact("I moved to {place} last {month} for a new job.", "Where did I move to last {month}?", "home"),
    Fact("My sister {person} is getting married in {place} in {month}.",
         "When is {person}'s wedding?", "family"),
    Fact("We adopted a {pet} called {pet_name} in {month}, she is already running the house.",
         "What is the name of our {pet}?", "pets"),
    Fact("I've been really into {hobby} lately, I go twice a week after work.",
         "What hobby have I picked up recently?", "hobbies"),
    Fact("Honestly my favourite dinner is {food}, I could eat it every day.",
         "What food do I love most?", "food"),
    Fact("I started working as a {job} in {place} this {month}.", "What is my job now?", "work"),
    Fact("My friend {person} is teaching me to play the {instrument}.",
         "Who is teaching me the {instrument}?", "music"),
    Fact("I'm allergic to peanuts, so please never suggest satay to me.",
         "What am I allergic to?", "health"),
    Fact("{person} and I are planning a trip to {place} in {month}.",
         "Where are {person} and I travelling to?", "travel"),
)

REPLIES = (
    "That sounds exciting! How are you settling in?",
    "Congratulations, that's wonderful news.",
    "Nice, tell me more about it.",
    "How long have you been thinking about that?",
    "That's lovely to hear. Anything I can help you plan?",
    "Noted, I'll keep that in mind.",
)
FOLLOW_UPS = (
    "Thanks! It's been a lot, but mostly good.",
    "Still figuring things out, to be honest.",
    "I'll tell you how it goes next week.",
    "Yes, and I'm a bit nervous about it.",
    "Not much else to say, it's been a busy month.",
)
GENERIC_QUERIES = ("What do you know about me?", "What are my plans this year?",
                   "Who are the people in my life?")


def render_fact(rng: random.Random) -> tuple[str, str, str]:
    """One fact with its slots filled: (what the user says, the question about it, its topic)."""
    fact = rng.choice(FACTS)
    slots = {
        "person": rng.choice(PEOPLE), "place": rng.choice(PLACES), "pet": rng.choice(PETS),
        "pet_name": rng.choice(PET_NAMES), "hobby": rng.choice(HOBBIES), "food": rng.choice(FOODS),
        "job": rng.choice(JOBS), "month": rng.choice(MONTHS), "instrument": rng.choice(INSTRUMENTS),
    }
    return fact.said.format(**slots), fact.question.format(**slots), fact.topic


def message_batch(rng: random.Random, size: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """``size`` chat messages (1-3 when None: a user fact, an assistant reply, a user follow-up;
    a larger batch goes on with more facts and replies) and a question about the first."""
    said, question, _ = render_fact(rng)
    messages = [{"role": "user", "content": said}]
    size = rng.randint(1, 3) if size is None else size
    while len(messages) < size:
        if len(messages) % 2:
            messages.append({"role": "assistant", "content": rng.choice(REPLIES)})
        elif len(messages) == 2:
            messages.append({"role": "user", "content": rng.choice(FOLLOW_UPS)})
        else:
            messages.append({"role": "user", "content": render_fact(rng)[0]})
    return messages, question


def memory_payload(rng: random.Random, user_id: str, session_id: str | None) -> tuple[dict[str, Any], str]:
    """One semantic memory for ``user_id`` and a question about it."""
    said, question, topic = render_fact(rng)
    memory = {
        "user_id": user_id, "session_id": session_id, "type": "semantic", "content": said,
        "topic": topic, "importance": round(rng.uniform(0.3, 0.9), 2),
    }
    return memory, question


def parse_mix(value: str) -> dict[str, float]:
    """``"messages=40,search=60"`` -> weights over OPERATIONS that sum to 1 (missing ones 0)."""
    weights = dict.fromkeys(OPERATIONS, 0.0)
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, sep, number = part.partition("=")
        name = name.strip()
        try:
            weight = float(number) if sep else math.nan
        except ValueError:
            weight = math.nan
        if name not in weights or not math.isfinite(weight) or weight < 0:
            raise argparse.ArgumentTypeError(
                f"mix must be op=weight pairs, comma-separated, ops from {','.join(OPERATIONS)}"
                f" and weights >= 0 (got {part!r})"
            )
        weights[name] = weight
    total = sum(weights.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("mix needs at least one positive weight")
    return {name: weight / total for name, weight in weights.items()}


def choose_operation(rng: random.Random, mix: Mapping[str, float]) -> str:
    """One operation, drawn with the mix's weights (an operation of weight 0 is never drawn)."""
    names = [name for name in OPERATIONS if mix.get(name, 0.0) > 0]
    return rng.choices(names, weights=[mix[name] for name in names])[0]


def client_seed(seed: int, client: int) -> int:
    """Each client's own stream: the same seed gives the same workload, client by client."""
    return seed * 1_000_003 + client


# ---------------------------------------------------------------------------------------------
# Statistics (pure)
# ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, as numpy's default; nan if empty."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(slots=True)
class OpStats:
    """What one operation did in one client (merged across clients afterwards)."""

    latencies_ms: list[float] = field(default_factory=list)  # of every call, failed ones too
    errors: int = 0
    error_samples: list[dict[str, Any]] = field(default_factory=list)

    def record(self, latency_ms: float, error: dict[str, Any] | None = None) -> None:
        self.latencies_ms.append(latency_ms)
        if error is not None:
            self.errors += 1
            if len(self.error_samples) < ERROR_SAMPLES:
                self.error_samples.append(error)

    def merge(self, other: OpStats) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.errors += other.errors
        room = ERROR_SAMPLES - len(self.error_samples)
        self.error_samples.extend(other.error_samples[: max(0, room)])


def merge_stats(per_client: Sequence[Mapping[str, OpStats]]) -> dict[str, OpStats]:
    merged = {name: OpStats() for name in OPERATIONS}
    for stats in per_client:
        for name, op in stats.items():
            merged.setdefault(name, OpStats()).merge(op)
    return merged


def summarise(stats: Mapping[str, OpStats], elapsed_s: float) -> dict[str, Any]:
    """Per operation and in total: count, ops/s, p50/p95/p99/max latency (ms), errors."""

    def row(latencies: Sequence[float], errors: int) -> dict[str, Any]:
        return {
            "count": len(latencies),
            "ops_per_s": len(latencies) / elapsed_s if elapsed_s > 0 else 0.0,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies) if latencies else math.nan,
            "errors": errors,
        }

    operations = {name: row(op.latencies_ms, op.errors) for name, op in stats.items()}
    everything = [ms for op in stats.values() for ms in op.latencies_ms]
    total = row(everything, sum(op.errors for op in stats.values()))
    return {"operations": operations, "total": total}


def read_cpu_times(path: Path = Path("/proc/stat")) -> list[int] | None:
    """The machine's aggregate CPU jiffies (user nice system idle iowait irq softirq steal ...)."""
    try:
        first = path.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    return [int(number) for number in first[1:]] if first and first[0] == "cpu" else None


def cpu_shares(before: Sequence[int] | None, after: Sequence[int] | None) -> dict[str, float] | None:
    """Busy, idle and steal as percentages of the CPU time between two ``read_cpu_times``."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8])  # guest time is already inside user
    if total <= 0:
        return None
    idle = delta[3] + delta[4]
    return {
        "busy_pct": 100 * (total - idle - delta[7]) / total,
        "idle_pct": 100 * idle / total,
        "steal_pct": 100 * delta[7] / total,
    }


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process, all its threads, from /proc (None elsewhere)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return parse_proc_cpu(text, os.sysconf("SC_CLK_TCK"))


def parse_proc_cpu(stat_line: str, ticks_per_s: int) -> float:
    """utime + stime of a ``/proc/<pid>/stat`` line in seconds (the name may hold spaces)."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s  # fields 14 and 15 of proc(5)


# ---------------------------------------------------------------------------------------------
# Report (pure)
# ---------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def mix_label(mix: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {round(100 * mix[name])}%" for name in OPERATIONS if mix.get(name, 0) > 0)


def render_markdown(result: Mapping[str, Any]) -> str:
    """The README table: one row per backend and operation, a total row per backend."""
    config = result["config"]
    lines = [
        f"Load: {config['clients']} clients, {config['seconds']:g} s per backend, mix"
        f" {mix_label(config['mix'])}, seed {config['seed']}.",
        "",
        "| backend | operation | count | ops/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for run in result["runs"]:
        rows = [(name, run["operations"][name]) for name in OPERATIONS if name in run["operations"]]
        for name, row in [*rows, ("**total**", run["total"])]:
            lines.append(
                f"| {run['backend']} | {name} | {row['count']} | {_num(row['ops_per_s'])}"
                f" | {_num(row['p50_ms'])} | {_num(row['p95_ms'])} | {_num(row['p99_ms'])}"
                f" | {row['errors']} |"
            )
        notes.append(f"{run['backend']}: {run_note(run)}")
    lines += ["", *notes]
    return "\n".join(lines)


def run_note(run: Mapping[str, Any]) -> str:
    """CPU during the load (client and server share the machine) and the indexing backlog."""
    parts = []
    cpu = run.get("cpu")
    if cpu:
        processes = [f"{name} {cpu[key]:.2f}" for name, key in
                     (("server", "server_cores"), ("client", "client_cores")) if cpu.get(key) is not None]
        used = f" (cores used: {', '.join(processes)})" if processes else ""
        parts.append(f"machine CPU busy {cpu['busy_pct']:.0f}%, steal {cpu['steal_pct']:.1f}%{used}")
    queue = run.get("queue") or {}
    after = queue.get("after")
    if after is not None:
        backlog = f"{after.get('pending', 0)} background jobs pending at the end"
        oldest = after.get("oldest_pending_age_seconds")
        backlog += f" (oldest {oldest:.1f} s old)" if oldest is not None else ""
        drained = queue.get("drained_s")
        backlog += f", drained in {drained:.1f} s" if drained is not None else ", not drained"
        parts.append(backlog)
        failed = (queue.get("final") or after).get("failed", 0)
        if failed:
            parts.append(f"failed background jobs: {failed}")
    return "; ".join(parts) + "." if parts else "–"


def render_errors(result: Mapping[str, Any], limit: int = 10) -> str:
    """The first error bodies of every run, one per line ('' when there were none)."""
    lines = []
    for run in result["runs"]:
        for sample in run["error_samples"][:limit]:
            lines.append(f"{run['backend']} {sample['op']}: {sample['status']} {sample['body']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# One client
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ClientPlan:
    """One client's identity, sessions and what it has said so far (the search questions)."""

    index: int
    user_id: str
    session_ids: list[str]
    rng: random.Random
    mix: Mapping[str, float]
    message_batch: int | None = None  # messages a batch (None: 1-3)
    questions: list[str] = field(default_factory=list)

    def remember(self, question: str, keep: int = 64) -> None:
        self.questions.append(question)
        del self.questions[:-keep]

    def query(self) -> str:
        return self.rng.choice(self.questions) if self.questions else self.rng.choice(GENERIC_QUERIES)


def make_plans(
    run_id: str, mixes: Sequence[Mapping[str, float]], sessions: int, seed: int, message_batch: int | None = None
) -> list[ClientPlan]:
    """One plan per client, each with its own mix."""
    return [
        ClientPlan(
            index=i,
            user_id=f"{run_id}-u{i}",
            session_ids=[f"{run_id}-u{i}-s{j}" for j in range(sessions)],
            rng=random.Random(client_seed(seed, i)),
            mix=mix,
            message_batch=message_batch,
        )
        for i, mix in enumerate(mixes)
    ]


def request_for(op: str, plan: ClientPlan) -> tuple[str, dict[str, Any], str | None]:
    """(path, JSON body, question to remember) of one ``op`` call by ``plan``'s client."""
    rng = plan.rng
    session_id = rng.choice(plan.session_ids)
    if op == "messages":
        messages, question = message_batch(rng, plan.message_batch)
        return f"/v1/sessions/{session_id}/messages", {"messages": messages}, question
    if op == "memories":
        memory, question = memory_payload(rng, plan.user_id, session_id)
        return "/v1/memories", memory, question
    if op == "search":
        body = {"query": plan.query(), "user_id": plan.user_id, "limit": SEARCH_LIMIT,
                "mode": "hybrid"}
        return "/v1/memories/search", body, None
    if op == "context":
        return (f"/v1/sessions/{session_id}/context",
                {"max_tokens": CONTEXT_MAX_TOKENS, "query": plan.query()}, None)
    raise ValueError(f"unknown operation {op!r}")


async def timed_post(
    http: httpx.AsyncClient, path: str, body: Mapping[str, Any]
) -> tuple[float, int | None, str | None]:
    """(latency ms, status or None, error text or None): non-2xx and exceptions are errors."""
    started = time.perf_counter()
    try:
        response = await http.post(path, json=body)
    except httpx.HTTPError as error:
        return (time.perf_counter() - started) * 1000, None, f"{type(error).__name__}: {error}"
    latency = (time.perf_counter() - started) * 1000
    if not 200 <= response.status_code < 300:
        return latency, response.status_code, response.text[:BODY_CHARS]
    return latency, response.status_code, None


async def prepare_client(http: httpx.AsyncClient, plan: ClientPlan) -> None:
    """Create the client's sessions and post one batch into each (not measured)."""
    for session_id in plan.session_ids:
        response = await http.post("/v1/sessions", json={"id": session_id, "user_id": plan.user_id})
        if response.status_code != 201:
            raise LoadError(f"POST /v1/sessions -> {response.status_code}: {response.text[:BODY_CHARS]}")
        messages, question = message_batch(plan.rng)
        response = await http.post(f"/v1/sessions/{session_id}/messages", json={"messages": messages})
        if response.status_code != 201:
            raise LoadError(f"POST messages -> {response.status_code}: {response.text[:BODY_CHARS]}")
        plan.remember(question)


async def client_loop(http: httpx.AsyncClient, plan: ClientPlan, deadline: float) -> dict[str, OpStats]:
    """Run operations of the plan's mix one after the other until ``deadline`` (perf_counter); their stats."""
    stats = {name: OpStats() for name in OPERATIONS}
    while time.perf_counter() < deadline:
        op = choose_operation(plan.rng, plan.mix)
        path, body, question = request_for(op, plan)
        latency, status, error = await timed_post(http, path, body)
        if error is None:
            stats[op].record(latency)
            if question is not None:
                plan.remember(question)
        else:
            stats[op].record(latency, {"op": op, "path": path, "status": status, "body": error})
    return stats


class LoadError(RuntimeError):
    """The benchmark could not run (a server that does not start, a setup call that fails)."""


def http_client(base_url: str, admin_key: str, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s),
        headers={"Authorization": f"Bearer {admin_key}"},
        limits=httpx.Limits(max_connections=2),
    )


async def run_workload(
    base_url: str, admin_key: str, plans: Sequence[ClientPlan],
    seconds: float, timeout_s: float, server_pid: int | None = None,
) -> tuple[dict[str, OpStats], float, dict[str, float] | None]:
    """Prepare every client, then run them all for ``seconds``: (stats, elapsed s, CPU use:
    the machine's shares and the cores the server and this process used on average)."""
    clients = [http_client(base_url, admin_key, timeout_s) for _ in plans]
    try:
        await asyncio.gather(*(prepare_client(c, p) for c, p in zip(clients, plans, strict=True)))
        machine_before, own_before = read_cpu_times(), time.process_time()
        server_before = process_cpu_seconds(server_pid) if server_pid else None
        started = time.perf_counter()
        deadline = started + seconds
        per_client = await asyncio.gather(
            *(client_loop(c, p, deadline) for c, p in zip(clients, plans, strict=True))
        )
        elapsed = time.perf_counter() - started
        cpu = cpu_shares(machine_before, read_cpu_times())
        if cpu is not None:
            cpu["client_cores"] = (time.process_time() - own_before) / elapsed
            server_after = process_cpu_seconds(server_pid) if server_pid else None
            if server_before is not None and server_after is not None:
                cpu["server_cores"] = (server_after - server_before) / elapsed
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return merge_stats(per_client), elapsed, cpu


async def queue_state(http: httpx.AsyncClient) -> dict[str, Any] | None:
    """``GET /v1/admin/queue``: pending and failed background jobs, or None when unreadable."""
    try:
        response = await http.get("/v1/admin/queue")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


async def drain_queue(
    base_url: str, admin_key: str, timeout_s: float, poll_s: float = 0.5
) -> dict[str, Any]:
    """The queue right after the load, and how long its backlog took to drain (None: not within
    ``timeout_s``, or no queue to read)."""
    async with http_client(base_url, admin_key, 30.0) as http:
        after = await queue_state(http)
        started = time.perf_counter()
        state = after
        while state is not None and state.get("pending", 0) > 0:
            if time.perf_counter() - started > timeout_s:
                return {"after": after, "drained_s": None, "final": state}
            await asyncio.sleep(poll_s)
            state = await queue_state(http)
        drained = time.perf_counter() - started if state is not None else None
        return {"after": after, "drained_s": drained, "final": state}


# ---------------------------------------------------------------------------------------------
# Server start and stop, scratch Postgres database and Redis keys
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, admin_key: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ours less any MEMORY_*, offline, quiet, keyed, unthrottled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
    env.update(
        HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_WAIT_POLICY="PASSIVE",
        MEMORY_DATA_DIR=str(data_dir), MEMORY_LOG_LEVEL="WARNING", MEMORY_LOG_FORMAT="json",
        MEMORY_ADMIN_KEY=admin_key, MEMORY_RATE_LIMIT_PER_MINUTE="0",
    )
    env.update(extra)
    return env


@dataclass(slots=True)
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path


def start_server(env: Mapping[str, str], log_path: Path, port: int) -> Server:
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=dict(env), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    return Server(proc, f"http://127.0.0.1:{port}", log_path)


def wait_ready(server: Server, timeout_s: float = START_TIMEOUT_S) -> float:
    """Poll ``/readyz`` until 200; seconds it took. LoadError when the child exits or times out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.proc.poll() is not None:
            raise LoadError(f"server exited with {server.proc.returncode}:\n{log_tail(server.log_path)}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise LoadError(f"server not ready after {timeout_s:.0f}s:\n{log_tail(server.log_path)}")


def stop_server(server: Server) -> int | None:
    """SIGTERM, then SIGKILL after 60 s; the exit code."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=30)
    return server.proc.returncode


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def log_problems(text: str, limit: int = 5) -> tuple[int, list[str]]:
    """Count of ERROR/CRITICAL lines and tracebacks in a server log, and the first few."""
    hits = [
        line for line in text.splitlines()
        if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line
        or line.startswith("Traceback")
    ]
    return len(hits), [line[:BODY_CHARS] for line in hits[:limit]]


async def _postgres_admin(base_url: str, sql: str) -> None:
    import asyncpg  # noqa: PLC0415 - only the servers backend needs it
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    url = make_url(base_url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(base_url: str, run_id: str) -> Iterator[str]:
    """A new, empty Postgres database on ``base_url``'s server; dropped on exit."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    name = "memsvc_load_" + "".join(ch for ch in run_id if ch.isalnum())[-24:].lower()
    asyncio.run(_postgres_admin(base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_postgres_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def delete_redis_keys(redis_url: str, run_id: str) -> int:
    """Delete this run's buffer keys (their session ids contain ``run_id``); how many."""
    from redis.asyncio import Redis  # noqa: PLC0415

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{REDIS_BUFFER_PREFIX}*{run_id}*", count=500)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        await client.aclose()


# ---------------------------------------------------------------------------------------------
# One backend, and the CLI
# ---------------------------------------------------------------------------------------------


def run_backend(args: argparse.Namespace, backend: str, run_id: str) -> dict[str, Any]:
    """Start the server for ``backend``, load it, stop it; the run's part of the results."""
    admin_key = secrets.token_urlsafe(32)  # 43 characters
    backend_run = f"{run_id}-{backend[:3]}"
    with tempfile.TemporaryDirectory(prefix=f"load-{backend}-") as tmp, _backend_env(
        args, backend, backend_run
    ) as extra:
        data_dir = Path(tmp)
        log_path = data_dir / "service.log"
        server = start_server(server_env(data_dir, admin_key, {**extra, **args.set}), log_path, free_port())
        try:
            ready_s = wait_ready(server)
            log.info("%s: ready in %.1fs at %s", backend, ready_s, server.url)
            plans = make_plans(backend_run, client_mixes(args), args.sessions, args.seed, args.message_batch)
            stats, elapsed, cpu = asyncio.run(run_workload(
                server.url, admin_key, plans, args.seconds, args.http_timeout, server.proc.pid,
            ))
            queue = asyncio.run(drain_queue(server.url, admin_key, args.drain_timeout))
        except LoadError as error:
            stop_server(server)
            raise LoadError(f"{error}\nserver log:\n{log_tail(log_path)}") from None
        finally:
            exit_code = stop_server(server)
        problems, first_problems = log_problems(log_tail(log_path, chars=10_000_000))
        if backend == "servers":
            deleted = asyncio.run(delete_redis_keys(args.redis_url, backend_run))
            log.info("servers: deleted %d Redis keys of the run", deleted)
    summary = summarise(stats, elapsed)
    samples = [sample for name in OPERATIONS for sample in stats[name].error_samples]
    return {
        "backend": backend,
        "run_id": backend_run,
        "ready_s": ready_s,
        "elapsed_s": elapsed,
        **summary,
        "error_samples": samples,
        "cpu": cpu,
        "queue": queue,
        "server_log_problems": problems,
        "server_log_first_problems": first_problems,
        "server_exit_code": exit_code,
    }


@contextmanager
def _backend_env(args: argparse.Namespace, backend: str, run_id: str) -> Iterator[dict[str, str]]:
    if backend == "embedded":
        yield {}
        return
    with scratch_database(args.postgres_url, run_id) as database_url:
        yield {"MEMORY_DATABASE_URL": database_url, "MEMORY_REDIS_URL": args.redis_url,
               "MEMORY_QDRANT_URL": QDRANT_LOCAL}


def client_mixes(args: argparse.Namespace) -> list[dict[str, float]]:
    """Each client's mix: ``--client-mix``'s, else ``--mix`` for each of ``--clients``."""
    return list(args.client_mix) if args.client_mix else [args.mix] * args.clients


def parse_client_mixes(value: str) -> list[dict[str, float]]:
    return [parse_mix(part) for part in value.split(";") if part.strip()]


def parse_setting(value: str) -> tuple[str, str]:
    name, sep, setting = value.partition("=")
    if not sep or not name.startswith("MEMORY_"):
        raise argparse.ArgumentTypeError(f"expected MEMORY_NAME=value, got {value!r}")
    return name, setting


def parse_backends(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names or set(names) - set(BACKENDS):
        raise argparse.ArgumentTypeError(f"backend must be {', '.join(BACKENDS)} or both, comma-separated")
    return list(dict.fromkeys(names))


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/load.py",
        description="Load benchmark: a real memory-service per backend set under a mixed"
        " workload (messages, memories, search, context) from concurrent clients.",
    )
    parser.add_argument("--backend", type=parse_backends, default=list(BACKENDS),
                        help="embedded, servers, or both comma-separated (default: both, in turn)")
    parser.add_argument("--clients", type=_positive_int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=_positive_float, default=30.0, help="load time per backend")
    parser.add_argument("--sessions", type=_positive_int, default=3, help="sessions per client")
    parser.add_argument("--mix", type=parse_mix, default=dict(DEFAULT_MIX),
                        help="operation weights, e.g. messages=40,memories=20,search=25,context=15")
    parser.add_argument("--client-mix", type=parse_client_mixes, default=None,
                        help="a mix per client, ';'-separated (overrides --mix and --clients), e.g."
                        " 'messages=1;messages=1;search=1': two writers and one searcher")
    parser.add_argument("--message-batch", type=_positive_int, default=None,
                        help="messages a messages call (default: 1-3 at random)")
    parser.add_argument("--set", type=parse_setting, action="append", default=[], metavar="MEMORY_NAME=VALUE",
                        help="a setting of the service under load (repeatable), e.g. MEMORY_EMBEDDING_THREADS=1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--http-timeout", type=_positive_float, default=30.0, metavar="SECONDS",
                        help="per request; a timeout counts as an error")
    parser.add_argument("--drain-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="longest wait, after the load, for the indexing queue to drain")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="server for the scratch database of the servers backend")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="Redis of the servers backend (the run's keys are deleted afterwards)")
    parser.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.set = dict(args.set)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    now = datetime.now(UTC)
    run_id = f"load-{now.strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"
    result: dict[str, Any] = {
        "benchmark": "load",
        "timestamp": now.isoformat(timespec="seconds"),
        "run_id": run_id,
        "config": {
            "backends": args.backend, "clients": len(client_mixes(args)), "seconds": args.seconds,
            "sessions_per_client": args.sessions, "mix": args.mix, "client_mixes": client_mixes(args),
            "message_batch": args.message_batch, "settings": args.set, "seed": args.seed,
            "http_timeout_s": args.http_timeout, "context_max_tokens": CONTEXT_MAX_TOKENS,
            "search_limit": SEARCH_LIMIT, "cpus": os.cpu_count(),
        },
        "runs": [],
    }
    for backend in args.backend:
        log.info("%s: starting the server", backend)
        try:
            result["runs"].append(run_backend(args, backend, run_id))
        except (LoadError, OSError, httpx.HTTPError) as error:
            log.error("%s: %s", backend, error)
            return 2
        run = result["runs"][-1]
        log.info("%s: %d requests, %d errors", backend, run["total"]["count"], run["total"]["errors"])

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log.info("results written to %s", args.out)
    print(render_markdown(result))
    errors = render_errors(result)
    if errors:
        print("\nFirst errors:\n" + errors)
    for run in result["runs"]:
        if run["server_log_problems"]:
            log.warning("%s: %d ERROR lines in the server log; first: %s", run["backend"],
                        run["server_log_problems"], run["server_log_first_problems"][:2])
        final = run["queue"]["final"]
        if final and final.get("failed"):
            log.warning("%s: %s failed background jobs", run["backend"], final["failed"])
    return 1 if sum(run["total"]["errors"] for run in result["runs"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
