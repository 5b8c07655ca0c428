"""Unversioned operations endpoints, hidden from the API schema: health, readiness, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import StateDep
from service.domain.upkeep import queue_state
from service.lifespan import State
from service.api.unavailable import install_unavailable_handlers
from service.observability.metrics import render_latest

router = APIRouter(include_in_schema=False)

#: A dependency that has not answered the readiness probe within this many seconds is down.
CHECK_TIMEOUT_SECONDS = 2.0


def install(app: FastAPI) -> None:
    """Mount the operations endpoints and answer unreachable backends with 503 problems."""
    app.include_router(router)
    install_unavailable_handlers(app)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _answers(ping: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(ping, CHECK_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - a probe reports, it never raises
        return False


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Every backend answers: 200; else 503, with each backend's state ("ok" or "down") in ``checks``."""
    checks = {
        "database": state.backends.db.ping(),
        "buffer": state.backends.buffer.ping(),
        "vectors": state.backends.vectors.ping(),
    }
    results = await asyncio.gather(*(_answers(c) for c in checks.values()))
    report = {name: "ok" if ok else "down" for name, ok in zip(checks, results, strict=True)}
    ready = all(results)
    body = {"status": "ready" if ready else "not_ready", "checks": report, "indexing": await _indexing(state)}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _indexing(state: State) -> dict[str, object]:
    """How far indexing lags: ``behind`` once the oldest pending indexing job is older than
    ``MEMORY_INDEXING_LAG_WARN_SECONDS`` (writes outpace the model). The other background jobs
    (digests, profiles) are reported beside it, and do not make it ``behind``. It never fails
    readiness: taking the process out of rotation would not index any faster."""
    try:
        queue = await asyncio.wait_for(queue_state(state.backends.db), CHECK_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - a probe reports, it never raises
        return {"state": "unknown"}
    lag = queue.indexing_lag_seconds or 0.0
    return {
        "state": "behind" if lag > state.settings.indexing_lag_warn_seconds else "ok",
        "pending": queue.indexing_pending,
        "oldest_pending_age_seconds": round(lag, 3),
        "background": {"pending": queue.pending, "oldest_pending_age_seconds": round(queue.oldest_pending_age_seconds or 0.0, 3)},
    }


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus exposition (multiprocess-aware)."""
    body, content_type = render_latest(state.metrics.registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)
