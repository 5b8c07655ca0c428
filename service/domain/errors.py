"""Typed domain errors: each carries its HTTP status and a stable machine-readable code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.storage.errors import InvalidCursor


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(DomainError):
    status, code, title = 422, "invalid_input", "Invalid input"


class LimitExceeded(DomainError):
    status, code, title = 422, "limit_exceeded", "Limit exceeded"


class Unavailable(DomainError):
    status, code, title = 503, "unavailable", "Service unavailable"


class Unauthorized(DomainError):
    """No credentials, or ones that match no live key (answered with ``WWW-Authenticate``)."""

    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": 'Bearer realm="memory-service"'})


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after)})


class IdempotencyConflict(DomainError):
    """The same ``Idempotency-Key`` is still being answered for an earlier request."""

    status, code, title = 409, "idempotency_in_progress", "Conflict"


@contextmanager
def checked_cursor() -> Iterator[None]:
    """A listing's cursor that the store refuses (another listing's, or garbage) is a 422."""
    try:
        yield
    except InvalidCursor as exc:
        raise InvalidInput(str(exc)) from exc
