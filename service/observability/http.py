"""Pure-ASGI middlewares: request ids and HTTP metrics labelled by route template.

Add them so that ``RequestIdMiddleware`` is outermost (Starlette runs the last one added first)::

    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)

Starlette's ``ServerErrorMiddleware`` (the 500 handler) sits outside every added middleware; to
have the request id in 500 responses and their problem bodies, wrap the whole application
instead: ``asgi_app = RequestIdMiddleware(app)``.

Route templates: after routing, Starlette leaves the matched route object in ``scope["route"]``
(FastAPI's ``APIRoute`` for API endpoints, the inner route for a mounted Starlette app, the
``Mount`` itself for other mounted apps). Recent FastAPI versions include routers lazily, so the
route object's own ``path_format`` lacks the prefixes of the routers that include it
(``/sessions/{session_id}`` for ``/v1/sessions/{session_id}``); the full template is read from
``fastapi.routing.iter_route_contexts`` instead. A request that matched no route is labelled
``unmatched``, so scanners probing random paths cannot grow the label set.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # keeps prometheus_client out of `import service.observability.logging`
    from service.observability.metrics import Metrics

UNMATCHED = "unmatched"
# Methods are client-chosen strings: anything else is labelled "other" to keep cardinality bounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_HEADER = b"x-request-id"
#: Paths the metrics middleware does not count (the scrape itself).
UNCOUNTED_PATHS = frozenset({"/metrics"})
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("memory_service_request_id", default=None)

access_logger = logging.getLogger("service.access")


def current_request_id() -> str | None:
    """The id of the request being served in this context, or None outside a request."""
    return _request_id.get()


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return candidate if _SANE_REQUEST_ID.match(candidate) else None
    return None


class RequestIdMiddleware:
    """Give every HTTP request an id: the client's ``X-Request-ID`` when sane, else a uuid4 hex.

    The id is available as ``current_request_id()`` while the request runs (log records pick it
    up) and is returned in the ``X-Request-ID`` response header. With ``access_log`` on, one INFO
    line per request is logged (method, route template, path without query, status, duration):
    unlike uvicorn's own access log it carries the request id and never the query string.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self._templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = _request_id.set(request_id)
        header_value = request_id.encode("ascii")
        outer_app = scope.get("app")
        root_path = scope.get("root_path", "")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, header_value))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                access_logger.info(
                    "%s %s %d",
                    scope["method"],
                    _relative_path(scope, root_path),
                    status,
                    extra={
                        "method": scope["method"],
                        "route": self._templates.template(outer_app or scope.get("app"), scope, root_path),
                        "path": _relative_path(scope, root_path),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            _request_id.reset(token)


class HttpMetricsMiddleware:
    """Count requests, time them and track those in flight, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, skip_paths: frozenset[str] = UNCOUNTED_PATHS) -> None:
        self.app = app
        self.metrics = metrics
        self.skip_paths = skip_paths
        self._templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        if _relative_path(scope, root_path) in self.skip_paths:
            await self.app(scope, receive, send)
            return

        outer_app = scope.get("app")
        status = 500  # what the client gets when the app raises before responding
        started = time.perf_counter()

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self.metrics.http_in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            in_flight.dec()
            route = self._templates.template(outer_app, scope, root_path)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.observe_request(method, route, status, time.perf_counter() - started)


def _relative_path(scope: Scope, root_path: str) -> str:
    path: str = scope.get("path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :] or "/"
    return path


class RouteTemplates:
    """Resolve the route Starlette/FastAPI left in ``scope["route"]`` to its full path template."""

    def __init__(self) -> None:
        self._app_id: int | None = None
        self._route_count = -1
        # id(route object) -> [(compiled full-path regex, full template)]; one route object can be
        # included under several prefixes, hence a list. Routes define __eq__, so key by id().
        self._table: dict[int, list[tuple[re.Pattern[str], str]]] = {}

    def template(self, app: Any, scope: Scope, root_path: str) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        candidates = self._lookup(app, route)
        if len(candidates) == 1:
            return candidates[0][1]
        path = _relative_path(scope, root_path)
        for regex, template in candidates:
            if regex.match(path):
                return template
        # Not reachable from the app's route table: a route inside a mounted sub-application.
        # Its template is relative to the mount, whose prefix the router moved into root_path.
        route_format = getattr(route, "path_format", None)
        if not route_format:
            return UNMATCHED
        mount_prefix = _relative_path({"path": scope.get("root_path", "")}, root_path)
        return mount_prefix.rstrip("/") + route_format

    def _lookup(self, app: Any, route: Any) -> list[tuple[re.Pattern[str], str]]:
        routes = getattr(app, "routes", None)
        if routes is None:
            return []
        if id(app) != self._app_id or len(routes) != self._route_count:
            self._table = _route_table(routes)
            self._app_id = id(app)
            self._route_count = len(routes)
        return self._table.get(id(route), [])


def route_templates(routes: Any, skip_paths: frozenset[str] = UNCOUNTED_PATHS) -> list[tuple[str, str]]:
    """(method, full path template) of every route the metrics middleware can label a request
    with (HEAD, which Starlette adds to every GET, left out), so their series can start at zero."""
    found: dict[tuple[str, str], None] = {}
    for original, _, template in _iter_routes(routes):
        if template and template not in skip_paths:
            for method in sorted(getattr(original, "methods", None) or ()):
                if method in KNOWN_METHODS and method != "HEAD":
                    found[(method, template)] = None
    return list(found)


def _route_table(routes: Any) -> dict[int, list[tuple[re.Pattern[str], str]]]:
    table: dict[int, list[tuple[re.Pattern[str], str]]] = {}
    for original, regex, template in _iter_routes(routes):
        if regex is not None and template:
            table.setdefault(id(original), []).append((regex, template))
    return table


def _iter_routes(routes: Any) -> Any:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazy router inclusion: routes carry their full path
        for route in routes:
            yield route, getattr(route, "path_regex", None), getattr(route, "path_format", None)
        return
    for context in iter_route_contexts(routes):
        yield context.original_route, getattr(context, "path_regex", None), context.path_format
