"""Logging setup: one JSON object per line (or plain text), every record tagged with the request id.

``configure_logging`` installs one handler on the root logger and routes uvicorn's loggers
through it. Run uvicorn with ``log_config=None`` so it does not replace this setup with its own
(it reconfigures logging when its ``Config`` is built), and call ``configure_logging`` in every
process (each uvicorn worker, the worker command) since handlers do not cross ``spawn``.

What is never logged: message or memory contents and secrets. Extra fields whose names say they
hold such things (``content``, ``text``, ``api_key``, ``authorization``...) are redacted, and
uvicorn's access lines lose their query string (a search query could be in it).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from service.observability.http import current_request_id

_HANDLER_NAME = "memory_service"
REDACTED = "[redacted]"

# Keys whose values are message contents or credentials: never written, whatever the level.
SENSITIVE_KEYS = frozenset(
    {
        "content",
        "contents",
        "text",
        "texts",
        "query",
        "prompt",
        "completion",
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "llm_api_key",
        "qdrant_api_key",
        "database_url",
        "redis_url",
    }
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "taskName"}

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class RequestIdFilter(logging.Filter):
    """Stamp ``record.request_id`` with the id of the request being served (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class AccessQueryStripFilter(logging.Filter):
    """Drop the query string from uvicorn access lines: (client, method, path, http, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key.startswith("_") or key in payload:
                continue
            payload[key] = REDACTED if key.lower() in SENSITIVE_KEYS else value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s [%(request_id)s] %(message)s")


def configure_logging(level: str = "INFO", fmt: str = "json", *, stream: TextIO | None = None) -> logging.Handler:
    """Install the service's handler on the root logger (replacing an earlier one) and return it.

    ``fmt`` is ``json`` or ``text`` (``LogFormat`` values are accepted as they are ``str``).
    """
    fmt = str(getattr(fmt, "value", fmt)).lower()
    if fmt not in {"json", "text"}:
        raise ValueError(f"unknown log format {fmt!r}; expected 'json' or 'text'")

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())

    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)
    root.setLevel(level.upper())

    # uvicorn's loggers: no handlers of their own, propagate to ours.
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessQueryStripFilter) for f in access.filters):
        access.addFilter(AccessQueryStripFilter())
    # Libraries that log request/response bodies or credentials at DEBUG/INFO stay at WARNING.
    for noisy in ("httpx", "httpcore", "urllib3", "sentence_transformers", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
