"""The OpenAPI document, with what the route guard adds declared: the Idempotency-Key header."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.guard import IDEMPOTENCY_HEADER
from service.domain.idempotency import MAX_KEY_CHARS

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


def install_openapi(app: FastAPI) -> None:
    """Build the document once, declaring the Idempotency-Key header on every /v1 POST."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for path, operations in schema.get("paths", {}).items():
                post = operations.get("post")
                if post is not None and path.startswith("/v1/"):
                    post.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
