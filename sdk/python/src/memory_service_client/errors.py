"""Typed errors: every answer that is not a success is raised as one, carrying the RFC 9457 problem."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from memory_service_client.models import Problem


class MemoryServiceError(Exception):
    """Base of every error this client raises.

    ``status`` is the HTTP status (None when no answer came back), ``problem`` the service's RFC 9457
    problem details (None likewise), ``request_id`` the id the service logged the request under.
    """

    def __init__(self, message: str, *, status: int | None = None, problem: Problem | None = None,
                 response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem
        self.response = response

    @property
    def code(self) -> str | None:
        """The problem's stable machine-readable code (``not_found``, ``rate_limited``...)."""
        return self.problem.code if self.problem else None

    @property
    def request_id(self) -> str | None:
        if self.problem and self.problem.request_id:
            return self.problem.request_id
        return self.response.headers.get("X-Request-ID") if self.response is not None else None


class APIConnectionError(MemoryServiceError):
    """No answer: the service could not be reached, or the connection broke (after the retries)."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout (after the retries)."""


class APIStatusError(MemoryServiceError):
    """The service answered with an error status; the subclasses name the common ones."""


class BadRequestError(APIStatusError):
    """400 and other 4xx statuses without a class of their own."""


class AuthenticationError(APIStatusError):
    """401: no API key, or one the service does not know (revoked, mistyped)."""


class PermissionDeniedError(APIStatusError):
    """403: the key's role may not do this (a client key on /v1/admin)."""


class NotFoundError(APIStatusError):
    """404: no such session, memory, user or tool in your tenant."""


class ConflictError(APIStatusError):
    """409: the id is taken, or the same Idempotency-Key is still being answered."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body is over the service's limit."""


class ValidationError(APIStatusError):
    """422: the request was refused as invalid; ``errors`` lists FastAPI's validation errors when there are any."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        found = (self.problem.model_extra or {}).get("errors") if self.problem else None
        return list(found) if isinstance(found, list) else []


class RateLimitedError(APIStatusError):
    """429: the key's requests-per-minute limit; ``retry_after`` says how many seconds to wait."""

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.response) if self.response is not None else None


class InternalServerError(APIStatusError):
    """5xx other than 503."""


class ServiceUnavailableError(APIStatusError):
    """503: a backend (database, vector index, embedding model) is not answering; retry shortly."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None without one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def problem_of(response: httpx.Response) -> Problem:
    """The response's problem details; a body that is not one (a proxy's page) becomes a minimal problem."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "title" in body:
        body.setdefault("status", response.status_code)
        return Problem.model_validate(body)
    detail = response.text[:500] or None
    return Problem(title=response.reason_phrase or "HTTP error", status=response.status_code, detail=detail,
                   code="http_error")


def error_for(response: httpx.Response) -> APIStatusError:
    """The typed error for an answer with an error status."""
    problem = problem_of(response)
    status = response.status_code
    kind = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else BadRequestError)
    message = f"{status} {problem.title}" + (f": {problem.detail}" if problem.detail else "")
    return kind(message, status=status, problem=problem, response=response)
