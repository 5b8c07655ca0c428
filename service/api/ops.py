"""Unversioned operations endpoints, hidden from the API schema: health, readiness, metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import StateDep
from service.observability.metrics import render_latest

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Every configured backend answers; 503 naming the ones that do not."""
    checks = {
        "database": state.backends.db.ping(),
        "buffer": state.backends.buffer.ping(),
        "vectors": state.backends.vectors.ping(),
    }
    results = await asyncio.gather(*checks.values())
    report = {name: "ok" if ok else "down" for name, ok in zip(checks, results, strict=True)}
    ready = all(results)
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": report}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus exposition (multiprocess-aware)."""
    body, content_type = render_latest(state.metrics.registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)
