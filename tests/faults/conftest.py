"""Fixtures of the fault tests: the app on private servers, and a stopwatch for bounded requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.settings import Settings

#: No request may take longer than this while a backend is down.
PATIENCE_SECONDS = 3.0


@contextmanager
def quick(limit: float = PATIENCE_SECONDS) -> Iterator[None]:
    """The block finishes within ``limit`` seconds (a request must not hang on a dead backend)."""
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < limit, f"took {took:.1f}s (limit {limit}s)"


def fault_settings(data_dir: Path, **backends: Any) -> Settings:
    """Embedded backends in ``data_dir`` unless ``backends`` name others; no API keys."""
    return Settings(data_dir=data_dir, auth_disabled=True, _env_file=None, **backends)  # type: ignore[call-arg]
