"""503 problems (with Retry-After) for a backend that does not answer; the cause goes to the log only."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.api.problems import problem_response
from service.storage.errors import VectorIndexUnreachable

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying a request that met an unavailable backend.
RETRY_AFTER_SECONDS = 2

#: What SQLAlchemy and asyncpg raise when the database cannot be reached. asyncpg's own
#: connect-time errors (CannotConnectNowError, ...) arrive wrapped as DBAPIError; a refused or
#: reset socket arrives as the bare OSError.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout, ConnectionError)


def lost_database(exc: Exception) -> bool:
    """Whether ``exc`` says the database is unreachable or busy (not that the statement was wrong)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, DATABASE_ERRORS)


def unavailable(request: Request, code: str, detail: str) -> JSONResponse:
    response = problem_response(request, 503, code, detail)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _database(request: Request, exc: Exception) -> JSONResponse:
    if not lost_database(exc):
        raise exc  # a real bug: the unexpected-error middleware answers 500 and logs the trace
    log.warning("database unavailable: %r", exc)
    return unavailable(request, "database_unavailable", "the database is not answering; retry shortly")


async def _vector_index(request: Request, exc: Exception) -> JSONResponse:
    log.warning("vector index unavailable: %s", exc)
    detail = "the vector index is not answering; retry shortly (writes are kept and indexed once it is back)"
    return unavailable(request, "vector_index_unavailable", detail)


def install_unavailable_handlers(app: FastAPI) -> None:
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)
    app.add_exception_handler(VectorIndexUnreachable, _vector_index)
