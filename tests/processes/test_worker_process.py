"""The API process writes jobs; a separate `memory-service worker` process picks them up and
completes them (two real processes on Postgres and Redis)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.storage.vectors.qdrant_edge import QdrantEdgeIndex
from tests.processes.harness import Child, free_port, serve, service_env, wait_drained

MESSAGES = 40
CONDENSE_EVERY = 20  # the default: one summary memory per 20 messages


@pytest.fixture
def shared(pg_url: str, redis_url: str) -> dict[str, str]:
    return {"database_url": pg_url, "redis_url": redis_url, "default_tenant": f"worker-{time.time_ns()}"}


async def test_worker_process_completes_jobs_written_by_the_api(tmp_path: Path, shared: dict[str, str]) -> None:
    log = tmp_path / "processes.log"
    metrics_port = free_port()
    # Each process has its own data dir: the embedded vector shard belongs to one process (with a
    # Qdrant server both would share it). The worker's shard is inspected after it stops.
    api = serve(tmp_path / "api", log, "--no-workers", **shared)
    worker = Child(["worker"], service_env(tmp_path / "worker", worker_metrics_port=str(metrics_port), **shared), log)
    api.start().wait_ready()
    try:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            assert client.post("/v1/sessions", json={"id": "w1", "user_id": "wu"}).status_code == 201
            batch = [{"role": "user", "content": f"message number {i}"} for i in range(MESSAGES)]
            assert client.post("/v1/sessions/w1/messages", json={"messages": batch}).status_code == 201
            # The API does not index them: one indexing job per message, one digest job for the batch,
            # one profile refresh for the user.
            assert client.get("/v1/admin/queue").json()["pending"] == MESSAGES + 2

            worker.start()
            wait_drained(client)
            exposition = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            completed = [line for line in exposition.splitlines() if line.startswith("memory_jobs_completed_total{")]
            assert completed and sum(float(line.split()[-1]) for line in completed) >= MESSAGES
    finally:
        worker.stop()
        api.stop()
    assert worker.proc is not None and worker.proc.returncode == 0, log.read_text()[-3000:]
    index = QdrantEdgeIndex(tmp_path / "worker" / "qdrant-edge", 384)
    try:
        assert await index.count(shared["default_tenant"]) == MESSAGES + MESSAGES // CONDENSE_EVERY
    finally:
        await index.close()
