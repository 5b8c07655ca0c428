"""Router defaults: operation ids ``<tag>-<handler>`` and the problem responses every route may give."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from service.schemas.common import Problem

_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request", **_PROBLEM},
    404: {"description": "Not found", **_PROBLEM},
    413: {"description": "Request body too large", **_PROBLEM},
    422: {"description": "Validation failed", **_PROBLEM},
    500: {"description": "Unexpected error", **_PROBLEM},
}


def operation_id(route: APIRoute) -> str:
    """``sessions-create_session``: the tag names the client class, the handler names the method."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def resource_router(tag: str, prefix: str = "") -> APIRouter:
    return APIRouter(prefix=prefix, tags=[tag], responses=PROBLEM_RESPONSES)
