"""Kill the service while it is indexing: nothing it acknowledged may be missing afterwards, and
the restarted service has it all searchable within seconds (it releases the claims its killed
predecessor held at once, rather than waiting for their lease).

Then lose the vector index entirely and rebuild it with `memory-service reindex`: SQL is the
source of truth and the vectors are derived data.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from service.workers.outbox import OutboxConfig
from tests.processes.harness import run, serve, wait_drained

MESSAGES = 300
BATCH = 50
#: The claim lease the killed service held; waiting it out is what releasing claims at start avoids.
LEASE_S = OutboxConfig().lease_seconds
#: From the restarted service's readiness to every acknowledged write indexed: well under the lease
#: (so waiting out the killed service's claims fails it), not a speed target (300 embeddings on 2
#: busy CI cores have taken 5 s).
SEARCHABLE_WITHIN_S = LEASE_S / 2


def word(i: int) -> str:
    """A made-up word that only message ``i`` contains, so a keyword search must find exactly it."""
    letters = "bcdfghjklmnpqrstvwxz"
    return "zq" + "".join(letters[int(d)] for d in f"{i:04d}")


@pytest.fixture(params=["embedded", "postgres+redis"])
def server_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "embedded":
        return {}
    return {"database_url": request.getfixturevalue("pg_url"), "redis_url": request.getfixturevalue("redis_url")}


def assert_all_recalled(client: httpx.Client, acknowledged: dict[int, str]) -> None:
    missing = []
    for i, message_id in acknowledged.items():
        assert client.get(f"/v1/memories/{message_id}").status_code == 200
        body = {"query": word(i), "user_id": "crash-user", "mode": "keyword", "limit": 1}
        hits = client.post("/v1/memories/search", json=body).json()["items"]
        if not hits or hits[0]["memory"]["id"] != message_id:
            missing.append(i)
    assert not missing, f"{len(missing)} acknowledged messages are not recalled, e.g. {missing[:5]}"


def test_killed_while_indexing_then_recovered_then_reindexed(tmp_path: Path, server_settings: dict[str, str]) -> None:
    log = tmp_path / "service.log"
    first = serve(tmp_path, log, **server_settings).start().wait_ready()
    acknowledged: dict[int, str] = {}
    try:
        with httpx.Client(base_url=first.url, timeout=60) as client:
            assert client.post("/v1/sessions", json={"id": "crash", "user_id": "crash-user"}).status_code == 201
            for start in range(0, MESSAGES, BATCH):
                batch = [{"role": "user", "content": f"note {i}: remember {word(i)}"} for i in range(start, start + BATCH)]
                response = client.post("/v1/sessions/crash/messages", json={"messages": batch})
                assert response.status_code == 201
                acknowledged.update({start + n: m["id"] for n, m in enumerate(response.json()["items"])})
            pending_at_kill = client.get("/v1/admin/queue").json()["pending"]
            first.kill()
    finally:
        first.stop()
    assert pending_at_kill > 0, "indexing finished before the kill; the test did not interrupt it"

    second = serve(tmp_path, log, **server_settings).start().wait_ready()
    try:
        with httpx.Client(base_url=second.url, timeout=60) as client:
            ready = time.monotonic()
            wait_drained(client)
            drained_after = time.monotonic() - ready
            assert_all_recalled(client, acknowledged)
            assert drained_after < SEARCHABLE_WITHIN_S, f"searchable {drained_after:.1f}s after the restart"
            print(f"searchable {drained_after:.2f}s after the restart ({pending_at_kill} jobs pending at the kill)")
    finally:
        second.stop()

    shutil.rmtree(tmp_path / "qdrant-edge")  # every vector is gone
    result = run(["reindex"], tmp_path, **server_settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[1]) >= MESSAGES, result.stdout  # "reindexed N memories"

    third = serve(tmp_path, log, **server_settings).start().wait_ready()
    try:
        with httpx.Client(base_url=third.url, timeout=60) as client:
            assert_all_recalled(client, acknowledged)
    finally:
        third.stop()
