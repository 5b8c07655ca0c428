"""Schema-driven fuzzing: schemathesis generates requests for every operation of the app's own
OpenAPI document (valid and invalid ones) and checks that none gets a 5xx and that every answer
conforms to what the document declares (status codes, content types, bodies).

In-process ASGI on the embedded backend, with API keys required (SQLite, in-process buffer, Qdrant Edge). Derandomized, so
a CI run is reproducible; a bounded number of examples per operation keeps it at about a minute.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.specs.openapi import checks

from service.lifespan import Backends, open_backends, open_embedder
from service.main import create_app
from service.observability.metrics import Metrics
from service.settings import Settings
from service.storage.ports import Embedder
from service.storage.sql import migrate

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))

#: Left out: a schema-valid request may still
#: be refused for what a schema cannot say (a session that does not exist, a forged cursor, an
#: expiry in the past); and pydantic's lax coercions (a repeated query parameter keeps its last
#: value) are accepted on purpose. Invalid data is still sent: it must never get a 5xx. Every other
#: check runs: no 5xx, declared status codes, content types, headers and bodies, and 405 with an
#: Allow header that lists exactly the documented methods; and ``ignored_auth``: every operation
#: sent without the key, or with a wrong one, must be refused.
EXCLUDED = [checks.positive_data_acceptance, checks.negative_data_rejection]


def _data_dir() -> Path:
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="memsvc-fuzz-", dir=shm if shm.is_dir() else None))
    # Registered before schemathesis starts the app, so it runs after the app has shut down.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: object, value: object) -> bytes:
    """An import stream: the generated value as lines (a string as it is, anything else as JSON)."""
    import json

    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode() + b"\n"


ADMIN_KEY = "fuzz-admin-" + secrets.token_urlsafe(24)
#: With keys on, as in production: every request carries an admin key (it may call every operation).
SETTINGS = Settings(data_dir=_data_dir(), default_tenant="fuzz", admin_key=ADMIN_KEY, _env_file=None)  # type: ignore[call-arg]
migrate.upgrade(SETTINGS.sql_url)
#: The model, loaded by the first test's lifespan and kept for the others. Schemathesis runs each
#: test's lifespan, one after the other, on one event loop of its own; a model loaded per test
#: left about 450 MB behind each time (18 GB over the module), which the objects' counts do not show.
_EMBEDDER: list[Embedder] = []


@asynccontextmanager
async def _backends(settings: Settings, metrics: Metrics) -> AsyncIterator[Backends]:
    if not _EMBEDDER:
        _EMBEDDER.append(await open_embedder(settings, metrics))
    async with open_backends(settings, metrics, embedder=_EMBEDDER[0]) as backends:
        yield backends


APP = create_app(SETTINGS, build=_backends)
# From the document itself, so collecting this module does not start the app; the first call does.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.mark.model
@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_answer_is_declared(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, excluded_checks=EXCLUDED)
