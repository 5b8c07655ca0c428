"""The OpenAPI document and the pages that show it.

The document declares what the route guard and the middlewares add: the Idempotency-Key header on
/v1 POSTs, and the problem responses each operation can give, derived here in one place from what
the operation is (guarded, admin-only, naming a resource in its path, taking a body, ...). The
pages (/docs, /redoc) load their scripts from the package, never from a CDN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from service.api.guard import IDEMPOTENCY_HEADER
from service.api.problems import PROBLEM_JSON
from service.domain.auth import Role
from service.domain.idempotency import MAX_KEY_CHARS
from service.schemas.common import Problem

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: a retry with the same key and body gets the first answer back "
        "(with `Idempotent-Replayed: true`) and stores nothing twice; the same key with another body is a 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[\\x21-\\x7E]+$"},
}

PROBLEM_REF = "#/components/schemas/Problem"

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}

#: What each problem status means, as the document says it.
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "The body could not be read (it is not UTF-8 text)",
    401: "No API key, or one that is unknown or revoked",
    403: "The key's role may not do this: the operation needs an admin key",
    404: "Not found: what the path names does not exist",
    409: "Conflict: a request with this Idempotency-Key is still running; retry shortly",
    413: "Request body too large (MEMORY_MAX_REQUEST_BYTES)",
    422: "Validation failed; `errors` lists each error with its `loc`, `msg` and `type`",
    429: "The key's rate limit is reached; retry after Retry-After seconds",
    500: "Unexpected error (logged with the request id)",
    503: "A backend (database, vector index, embedding model) is not answering; retry after Retry-After seconds",
}

#: The same, for a status the route declares itself (``responses={409: {}}``) without a description.
DECLARED_DESCRIPTIONS: dict[int, str] = {
    404: "Not found: what the path or the body names does not exist",
    409: "Conflict: the record already exists (its id is taken), or a request with this Idempotency-Key "
    "is still running",
}

PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`, the scheme to authenticate with.", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}

#: What FastAPI adds for its own 422 body; the 422 here is a Problem.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


@dataclass(frozen=True, slots=True)
class Operation:
    """What the document needs to know of a route beyond what it says about it."""

    role: Role | None  # the key role its guard needs; None: not behind the guard
    responses: dict[int | str, Any]  # as declared with ``responses=``


def operations(routes: Sequence[Any]) -> dict[tuple[str, str], Operation]:
    """(path template, lower-case method) -> Operation, for every route of the document."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazy router inclusion: routes carry their full path
        contexts: Iterable[Any] = [(route, route) for route in routes]
    else:
        contexts = ((context, context.original_route) for context in iter_route_contexts(routes))
    found = {}
    for route, original in contexts:
        if isinstance(original, APIRoute) and getattr(route, "include_in_schema", False):
            operation = Operation(getattr(original, "required_role", None), dict(route.responses or {}))
            for method in route.methods or ():
                found[(route.path_format, method.lower())] = operation
    return found


def problem_statuses(route: Operation | None, method: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses an operation can answer, from what it is.

    Every one: 500. Behind the guard (``service.api.guard``): 401 and 429 for the key, 503 for the
    stores behind every handler; 403 when it needs an admin key; 409 on a POST, whose Idempotency-Key
    may still be in flight. A path parameter names a resource: 404. A body: 413, and 400 when it is
    JSON that is not UTF-8. Parameters or a body: 422. A route adds others with ``responses=``
    (``{409: {}}`` where creating may conflict), and they get the Problem schema too.
    """
    statuses = {500}
    if route is not None and route.role is not None:
        statuses |= {401, 429, 503}
        if route.role is Role.admin:
            statuses.add(403)
        if method == "post":
            statuses.add(409)
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    body = operation.get("requestBody")
    if body is not None:
        statuses.add(413)
        if "application/json" in body.get("content", {}):
            statuses.add(400)
    if parameters or body is not None:
        statuses.add(422)
    for status in route.responses if route is not None else ():
        if str(status).isdigit() and int(status) >= 400:
            statuses.add(int(status))
    return statuses


def _problem_response(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    if declared is not None and declared.get("description"):
        description = declared["description"]
    elif declared is not None and status in DECLARED_DESCRIPTIONS:
        description = DECLARED_DESCRIPTIONS[status]
    else:
        description = PROBLEM_DESCRIPTIONS.get(status, "Error")
    response: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}
    if status in PROBLEM_HEADERS:
        response["headers"] = PROBLEM_HEADERS[status]
    return response


def declare_problems(schema: dict[str, Any], routes: Sequence[Any]) -> None:
    """Give every operation its problem responses (application/problem+json, the Problem schema),
    and every guarded POST its Idempotency-Key header."""
    known = operations(routes)
    for path, items in schema.get("paths", {}).items():
        for method, operation in items.items():
            route = known.get((path, method))
            if method == "post" and route is not None and route.role is not None:
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
            responses = operation.setdefault("responses", {})
            for status in sorted(problem_statuses(route, method, operation)):
                declared = route.responses.get(status, route.responses.get(str(status))) if route else None
                responses[str(status)] = _problem_response(status, declared)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's own 422 body, replaced above
        others = {other: value for other, value in components.items() if other != name}
        if f'"#/components/schemas/{name}"' not in json.dumps([schema["paths"], others]):
            components.pop(name, None)

STATIC = Path(__file__).with_name("static")
ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their scripts served from the package; out of the schema
    and out of the guard (it covers /v1 only), like the document they show."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no calls to validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            with_google_fonts=False,
        )


def install_openapi(app: FastAPI) -> None:
    """Build the document once (with its problem responses and the Idempotency-Key header) and
    serve its pages. ``app`` is made with ``docs_url=None, redoc_url=None``."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            declare_problems(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    install_docs(app)
