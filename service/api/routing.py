"""Router defaults: operation ids ``<tag>-<handler>``, the guard and its security schemes.

The problem responses of each operation are derived in ``service.api.openapi``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from service.api.guard import SECURITY, guarded
from service.domain.auth import Role


def operation_id(route: APIRoute) -> str:
    """``sessions-create_session``: the tag names the client class, the handler names the method."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def resource_router(tag: str, prefix: str = "", role: Role = Role.client) -> APIRouter:
    """A router of one resource whose routes need a key of ``role`` (see ``service.api.guard``)."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=guarded(role), dependencies=SECURITY)
