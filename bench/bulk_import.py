"""Bulk import rate: ``POST /v1/memories/import`` into a real memory-service over HTTP.

Without ``--base-url`` it starts a throw-away embedded service (SQLite, in-process buffer, Qdrant
Edge in a temporary folder; ``memory-service serve`` on a free port of 127.0.0.1, keys on) and
stops it afterwards. It streams ``--count`` filler memories of ``--users`` users (the LoCoMo
benchmark's filler sentences, ``bench/locomo.py``) in requests of 20,000 lines, each line with a
seeded random unit vector of ``--dimension`` numbers, or with none (``--no-vectors``: the
service's worker embeds them), and reports:

- ``import_per_s``: memories per second from the first byte sent to the last answer (stored in
  SQL, and with vectors written to the index);
- ``until_drained_s``: from the first byte until the service's queue is empty (the profile
  refreshes, and without vectors the embedding);
- the server process's CPU seconds and the machine's CPU shares over the import.

The client runs on the same machine as the server and takes part of the CPU (little: the lines
are built from bytes prepared once). This is a measurement, not a test.

    python -m bench.bulk_import --count 50000
    python -m bench.bulk_import --count 20000 --no-vectors
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.load import (
    cpu_shares,
    free_port,
    process_cpu_seconds,
    read_cpu_times,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from bench.locomo import FILLER_POOL, FillerPlan, filler_pool, import_filler
from bench.report import emit

log = logging.getLogger("bench.bulk_import")


def random_vectors(count: int, dimension: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # type: ignore[no-any-return]


async def measure(base_url: str, key: str | None, plan: FillerPlan, pid: int | None) -> dict[str, Any]:
    from tqdm import tqdm  # type: ignore[import-untyped]

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(600.0)) as http:
        cpu_before, server_before = read_cpu_times(), process_cpu_seconds(pid) if pid else None
        started = time.perf_counter()
        with tqdm(total=plan.count, desc="import", unit="mem", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
            requests, answer = await import_filler(http, plan, bar.update)
        imported = time.perf_counter() - started
        cpu_after, server_after = read_cpu_times(), process_cpu_seconds(pid) if pid else None
        while (await http.get("/v1/admin/queue")).json()["pending"]:
            await asyncio.sleep(0.25)
        drained = time.perf_counter() - started
    return {
        "count": plan.count,
        "users": plan.users,
        "vectors": plan.vectors is not None,
        "requests": requests,
        "answer": answer,
        "import_s": round(imported, 2),
        "import_per_s": round(plan.count / imported, 1),
        "until_drained_s": round(drained, 2),
        "until_drained_per_s": round(plan.count / drained, 1),
        "server_cpu_s": round(server_after - server_before, 2) if server_after is not None and server_before is not None else None,
        "machine_cpu": cpu_shares(cpu_before, cpu_after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_import", description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running service (default: start a throw-away embedded one)")
    parser.add_argument("--api-key", help="an admin key of --base-url (it reads the queue)")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--dimension", type=int, default=384, help="the service model's (all-MiniLM-L6-v2: 384)")
    parser.add_argument("--no-vectors", action="store_true", help="lines without vectors: the worker embeds them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the result JSON here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    pool = filler_pool(FILLER_POOL, args.seed)
    vectors = None if args.no_vectors else random_vectors(len(pool), args.dimension, args.seed)
    plan = FillerPlan(args.count, args.users, args.seed, f"bulk-{secrets.token_hex(4)}", pool, vectors)
    if args.base_url:
        result = asyncio.run(measure(args.base_url, args.api_key, plan, None))
    else:
        with tempfile.TemporaryDirectory(prefix="memsvc-bulk-") as folder:
            key = "adm_" + secrets.token_urlsafe(24)
            server = start_server(server_env(Path(folder), key, {}), Path(folder) / "service.log", free_port())
            try:
                wait_ready(server)
                result = asyncio.run(measure(server.url, key, plan, server.proc.pid))
            finally:
                stop_server(server)
        result["service"] = "embedded (SQLite, in-process buffer, Qdrant Edge), started by the benchmark"
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
