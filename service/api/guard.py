"""Every /v1 route runs behind the guard: authenticate, check the role, rate-limit, and replay
idempotent POSTs. It is a route class (not a middleware) so its errors render as problems through
the same exception handlers as the handlers' own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from fastapi import Request, Response, Security
from fastapi.params import Depends
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer

from service.domain.auth import Principal, Role
from service.domain.errors import Forbidden, Unauthorized
from service.domain.idempotency import Answer, check_key, fingerprint
from service.lifespan import State

Handler = Callable[[Request], Awaitable[Response]]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


#: Declared for the OpenAPI document (either one will do); the guard itself reads the headers.
SECURITY: list[Depends] = [
    Security(HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")),
    Security(APIKeyHeader(name="X-API-Key", auto_error=False, description="The same API key in `X-API-Key`.")),
]


def presented_secret(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        return token.strip()
    return request.headers.get("x-api-key") or None


async def authenticate(state: State, request: Request) -> Principal:
    if state.settings.auth_disabled:
        return Principal(state.settings.default_tenant, Role.admin, None)
    secret = presented_secret(request)
    if secret is None:
        raise Unauthorized("an API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    return await state.keys.authenticate(secret)


async def _idempotent(state: State, principal: Principal, request: Request, key: str, handler: Handler) -> Response:
    body = await request.body()
    started = await state.idempotency.begin(
        principal.tenant_id, key, fingerprint(request.method, request.url.path, request.url.query, body)
    )
    if started is not None:
        return Response(started.body, started.status, {REPLAYED_HEADER: "true"}, started.media_type)
    try:
        response = await handler(request)
    except BaseException:
        await state.idempotency.release(principal.tenant_id, key)
        raise
    content = getattr(response, "body", None)
    if not isinstance(content, bytes):  # a streamed answer cannot be kept: let a retry run again
        await state.idempotency.release(principal.tenant_id, key)
        return response
    await state.idempotency.finish(principal.tenant_id, key, Answer(response.status_code, content, response.media_type))
    return response


def guarded(role: Role) -> type[APIRoute]:
    """A route class whose handlers need a key of ``role`` (admins may use every route)."""

    class GuardedRoute(APIRoute):
        required_role: ClassVar[Role] = role  # read by service.api.openapi for the 403 it may answer

        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guard(request: Request) -> Response:
                state: State = request.app.state.memory
                principal = await authenticate(state, request)
                if role is Role.admin and principal.role is not Role.admin:
                    raise Forbidden("this operation needs an admin key")
                request.state.principal = principal
                await state.limiter.check(principal)
                key = request.headers.get(IDEMPOTENCY_HEADER)
                if request.method == "POST" and key is not None:
                    return await _idempotent(state, principal, request, check_key(key), handler)
                return await handler(request)

            return guard

    return GuardedRoute
