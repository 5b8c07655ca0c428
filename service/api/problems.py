"""Every error leaves as application/problem+json (RFC 9457); never a stack trace."""

from __future__ import annotations

import logging
import math
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.domain.errors import DomainError
from service.embedding.sentence_transformer import EmbedderClosedError
from service.observability.http import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, code: str, detail: str | None, instance: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": current_request_id(),
        **extra,
    }


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot carry made printable: NaN and Infinity, lone surrogates."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def problem_response(request: Request, status: int, code: str, detail: str | None, **extra: Any) -> JSONResponse:
    body = problem_body(status, code, detail, request.url.path, **extra)
    return JSONResponse(json_safe(jsonable_encoder(body)), status_code=status, media_type=PROBLEM_JSON)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    response = problem_response(request, exc.status, exc.code, exc.detail)
    response.headers.update(exc.headers)
    return response


def _validation_summary(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "ctx" and k != "url"} for e in exc.errors()]
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    code = "malformed_json" if malformed else "validation_failed"
    return problem_response(request, 422, code, _validation_summary(errors), errors=errors)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^/}]+\}", path)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")


def allowed_methods(request: Request) -> str:
    """Every method the path has, as documented (Starlette names only the first route's).

    The most literal documented path wins (``/v1/memories/search`` over ``/v1/memories/{memory_id}``);
    a path left out of the document falls back to the routes that match it.
    """
    path = request.scope["path"]
    documented = [(p.count("{"), item) for p, item in request.app.openapi()["paths"].items() if _template(p).match(path)]
    if documented:
        item = min(documented, key=lambda found: found[0])[1]
        return ", ".join(m for m in _METHODS if m.lower() in item)
    routes = request.app.router.routes
    return ", ".join(
        m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "http_error")
    response = problem_response(request, exc.status_code, code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


async def _embedder_closed(request: Request, exc: Exception) -> JSONResponse:
    """The embedding model is shutting down (or never started): try again, maybe elsewhere."""
    response = problem_response(request, 503, "embedder_unavailable", "the embedding model is not running; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(EmbedderClosedError, _embedder_closed)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit`` bytes with a 413 problem, declared or streamed.

    ``larger`` gives paths ending in a suffix their own limit (an import stream, say).
    """

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}

    def _limit(self, path: str) -> int:
        return next((limit for suffix, limit in self.larger.items() if path.endswith(suffix)), self.limit)

    @staticmethod
    def _detail(limit: int) -> str:
        return f"request body is larger than the limit of {limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            body = problem_body(413, "payload_too_large", self._detail(limit), scope.get("path"))
            await JSONResponse(body, status_code=413, media_type=PROBLEM_JSON)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside body parsing; FastAPI re-raises HTTPException to our handler.
                    raise StarletteHTTPException(413, detail=self._detail(limit))
            return message

        await self.app(scope, counting_receive, send)


class UnexpectedErrorMiddleware:
    """Turns an unhandled exception into a 500 problem inside the request-id scope; logs the trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            detail = "An unexpected error occurred; it has been logged."
            body = problem_body(500, "internal_error", detail, scope.get("path"))
            await JSONResponse(body, status_code=500, media_type=PROBLEM_JSON)(scope, receive, send)
