"""The OpenAPI document is the contract generated clients are built from: keep it stable, keep the
committed openapi.json equal to the served one, and declare every error as a Problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.main import create_app
from service.settings import Settings
from tests.api.auth_fixtures import bearer, new_tenant, secured
from tests.api.helpers import assert_problem
from tests.conftest import app_for, migrated, start

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi.json"
REGENERATE = "`.venv/bin/memory-service openapi > openapi.json` (or `UPDATE_OPENAPI=1 make test`)"
PROBLEM_REF = "#/components/schemas/Problem"


def _spec() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_operation_ids_are_unique_and_tagged() -> None:
    operations = [op for _, _, op in _operations(_spec())]
    ids = Counter(op["operationId"] for op in operations)
    assert ids and all(count == 1 for count in ids.values()), ids
    for op in operations:
        tag = op["tags"][0]
        assert op["operationId"].startswith(f"{tag}-"), op["operationId"]
        assert op.get("description") or op.get("summary"), op["operationId"]


def test_the_committed_openapi_json_is_the_served_document() -> None:
    current = json.dumps(_spec(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_OPENAPI") == "1":
        DOCUMENT.write_text(current)
    assert DOCUMENT.is_file() and current == DOCUMENT.read_text(), (
        f"The OpenAPI document changed. If that is intended, regenerate openapi.json with {REGENERATE} "
        "and commit it."
    )


def test_memory_service_openapi_prints_the_committed_document() -> None:
    script = Path(sys.executable).with_name("memory-service")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
    done = subprocess.run([*command, "openapi"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == DOCUMENT.read_text(), f"`memory-service openapi` differs from openapi.json; run {REGENERATE}"


def test_every_error_response_is_a_problem() -> None:
    spec = _spec()
    problem = spec["components"]["schemas"]["Problem"]
    assert {"title", "status", "code"} <= set(problem["required"])
    assert "HTTPValidationError" not in spec["components"]["schemas"], "422 answers are problems, not FastAPI's shape"
    for method, path, op in _operations(spec):
        errors = {status: r for status, r in op["responses"].items() if not status.startswith("2")}
        assert "500" in errors, (method, path)
        for status, response in errors.items():
            assert response.get("description"), (method, path, status)
            assert response.get("content") == {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}, (
                method,
                path,
                status,
                response,
            )


def test_problem_statuses_follow_what_each_operation_is() -> None:
    """401/429/503 behind the guard, 403 for admin routes only, 404 where the path names a resource,
    409 and Idempotency-Key on POSTs, 413 and 400 with a JSON body, 422 where there is input."""
    for method, path, op in _operations(_spec()):
        declared = {int(s) for s in op["responses"] if not s.startswith("2")}
        where = (method, path, sorted(declared))
        parameters = op.get("parameters", [])
        body = op.get("requestBody")
        if op.get("security"):
            assert {401, 429, 503} <= declared, where
            assert (403 in declared) == path.startswith("/v1/admin/"), where
        if any(p["in"] == "path" for p in parameters):
            assert 404 in declared, where
        if method == "post" and path.startswith("/v1/"):
            assert 409 in declared and "Idempotency-Key" in [p["name"] for p in parameters if p["in"] == "header"], where
        if body is not None:
            assert 413 in declared, where
            assert (400 in declared) == ("application/json" in body["content"]), where
        assert (422 in declared) == bool(parameters or body), where
        assert declared <= {400, 401, 403, 404, 409, 413, 422, 429, 500, 503}, where
    headers = _spec()["paths"]["/v1/sessions"]["get"]["responses"]
    assert "Retry-After" in headers["429"]["headers"] and "Retry-After" in headers["503"]["headers"]
    assert "WWW-Authenticate" in headers["401"]["headers"]


def _request(method: str, path: str) -> tuple[str, str]:
    """A request to the operation with placeholder path parameters (valid for every pattern)."""
    filled = path
    while "{" in filled:
        start = filled.index("{")
        filled = filled[:start] + "1" + filled[filled.index("}", start) + 1 :]
    return method.upper(), filled


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_declared_auth_problems_are_the_answers(settings: Settings, embedder: Any) -> None:
    """Every documented operation refuses a missing key with 401; those that declare 403 refuse a
    client key with 403, and the others let it through (whatever they answer then is declared)."""
    settings = secured(settings)
    await migrated(settings.sql_url)
    app = app_for(settings, embedder)
    admin_key = settings.admin_key.get_secret_value()  # type: ignore[union-attr]
    async with start(app) as client:
        tenant = await new_tenant(client, admin_key)
        for method, path, op in _operations(app.openapi()):
            verb, url = _request(method, path)
            anonymous = await client.request(verb, url)
            assert_problem(anonymous, 401, "unauthorized")
            as_client = await client.request(verb, url, headers=bearer(tenant.key))
            if "403" in op["responses"]:
                assert_problem(as_client, 403, "forbidden")
                continue
            assert str(as_client.status_code) in op["responses"], (verb, url, as_client.status_code, as_client.text)
            if as_client.status_code >= 400:
                assert as_client.headers["content-type"].startswith("application/problem+json"), (verb, url)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_body_that_is_not_utf8_is_the_declared_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions", content=b'{"user_id": "\xff"}', headers={"content-type": "application/json"})
    assert_problem(response, 400)
