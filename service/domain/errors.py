"""Typed domain errors: each carries its HTTP status and a stable machine-readable code."""

from __future__ import annotations


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
