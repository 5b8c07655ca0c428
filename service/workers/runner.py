"""The standalone processes: `memory-service worker` and `memory-service reindex`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import start_http_server
from tqdm import tqdm  # type: ignore[import-untyped]

from service.domain.document_index import ChunkIndexer
from service.domain.indexing import Indexer
from service.lifespan import background, build_state, open_backends
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage.ports import Database

log = logging.getLogger(__name__)

REINDEX_PAGE = 256


def progress(total: int | None, unit: str) -> tqdm:
    """A progress bar on stderr, shown only when stderr is a terminal (stdout stays the result)."""
    return tqdm(total=total, desc="reindex", unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), mininterval=1.0, dynamic_ncols=True)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the background jobs (outbox indexing, purges, gauges) until SIGTERM/SIGINT or ``stop``."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    async with open_backends(settings, metrics) as backends:
        state = build_state(settings, backends, metrics)
        if settings.worker_metrics_port:
            start_http_server(settings.worker_metrics_port, registry=metrics.registry)
        supervisor = background(state)
        supervisor.start()
        log.info("worker started")
        try:
            await stop.wait()
        finally:
            await supervisor.stop()
            log.info("worker stopped")


async def _sync_isolated(indexer: Indexer, tenant_id: str, ids: list[str]) -> None:
    """Index a page; when the engine refuses it, each memory alone, so one bad row skips only itself."""
    try:
        await indexer.sync(tenant_id, ids)
        return
    except Exception:  # noqa: BLE001 - retried one by one below
        log.warning("a page of %d memories failed to index; retrying them one by one", len(ids))
    for memory_id in ids:
        try:
            await indexer.sync(tenant_id, [memory_id])
        except Exception as exc:  # noqa: BLE001 - the rest of the index is rebuilt regardless
            log.error("memory %s could not be indexed and is left out: %s", memory_id, exc)


@dataclass(frozen=True, slots=True)
class Reindexed:
    memories: int
    documents: int


async def reindex(settings: Settings) -> Reindexed:
    """Rebuild the vector index from SQL, the source of truth; how many memories and documents were read."""
    metrics = Metrics()
    async with open_backends(settings, metrics, fresh_vectors=True) as backends:
        state = build_state(settings, backends, metrics)
        return Reindexed(await _reindex_memories(state.backends.db, state.indexer), await _reindex_documents(state.chunks))


async def _reindex_memories(db: Database, indexer: Indexer) -> int:
    after, seen = "", 0
    async with db.transaction() as repos:
        total = sum((await repos.upkeep.count_by_type()).values())
    with progress(total, " memories") as bar:
        while True:
            async with db.transaction() as repos:
                page = await repos.upkeep.scan(after, REINDEX_PAGE)
            if not page:
                return seen
            by_tenant: dict[str, list[str]] = defaultdict(list)
            for memory in page:
                by_tenant[memory.tenant_id].append(memory.id)
            for tenant, ids in by_tenant.items():
                await _sync_isolated(indexer, tenant, ids)
            seen += len(page)
            bar.update(len(page))
            after = page[-1].id
            log.info("reindexed %d memories", seen)


async def _reindex_documents(chunks: ChunkIndexer) -> int:
    after: tuple[str, str] | None = None
    seen = 0
    with progress(None, " documents") as bar:
        while True:
            count, after = await chunks.reindex(after, REINDEX_PAGE)
            seen += count
            bar.update(count)
            if after is None:
                return seen
            log.info("reindexed %d documents", seen)
