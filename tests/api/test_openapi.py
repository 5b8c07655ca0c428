"""The OpenAPI document is the contract generated clients are built from: keep it stable."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from service.main import create_app
from service.settings import Settings

SNAPSHOT = Path(__file__).with_name("openapi.snapshot.json")


def _spec() -> dict:
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def test_operation_ids_are_unique_and_tagged() -> None:
    operations = [op for path in _spec()["paths"].values() for op in path.values()]
    ids = Counter(op["operationId"] for op in operations)
    assert ids and all(count == 1 for count in ids.values()), ids
    for op in operations:
        tag = op["tags"][0]
        assert op["operationId"].startswith(f"{tag}-"), op["operationId"]
        assert op.get("description") or op.get("summary"), op["operationId"]
        assert "422" in op["responses"] and "application/problem+json" in op["responses"]["422"]["content"]


def test_spec_matches_the_snapshot() -> None:
    current = json.dumps(_spec(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT") == "1":
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), (
        "The OpenAPI spec changed. If that is intended, run "
        "`UPDATE_OPENAPI_SNAPSHOT=1 make test` and commit tests/api/openapi.snapshot.json."
    )
