"""Router defaults: operation ids ``<tag>-<handler>`` and the problem responses every route may give."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from service.api.guard import SECURITY, guarded
from service.domain.auth import Role
from service.schemas.common import Problem

_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request", **_PROBLEM},
    401: {"description": "No API key, or one that is unknown or revoked", **_PROBLEM},
    403: {"description": "The key's role may not do this", **_PROBLEM},
    404: {"description": "Not found", **_PROBLEM},
    413: {"description": "Request body too large", **_PROBLEM},
    422: {"description": "Validation failed", **_PROBLEM},
    429: {"description": "Rate limit of the key reached; see Retry-After", **_PROBLEM},
    500: {"description": "Unexpected error", **_PROBLEM},
}


def operation_id(route: APIRoute) -> str:
    """``sessions-create_session``: the tag names the client class, the handler names the method."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def resource_router(tag: str, prefix: str = "", role: Role = Role.client) -> APIRouter:
    """A router of one resource whose routes need a key of ``role`` (see ``service.api.guard``)."""
    return APIRouter(
        prefix=prefix, tags=[tag], responses=PROBLEM_RESPONSES, route_class=guarded(role), dependencies=SECURITY
    )
