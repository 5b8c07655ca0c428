"""A Python client generated from openapi.json by openapi-python-client, driven against a live
service through a whole round trip: what a user of the document gets must work as it is."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import services
from tests.clients.conftest import OPENAPI, Served

#: Not ``memory_service_client``: that is the hand-written SDK (sdk/python), installed beside it.
PACKAGE = "memory_service_generated"
#: The NDJSON export and import are bytes to this generator; no post-hooks (ruff formatting) needed.
CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\ncontent_type_overrides:\n  application/x-ndjson: application/octet-stream\n"


@pytest.fixture(scope="session")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The generated package, imported (generated once per test run)."""
    generator = Path(sys.executable).with_name("openapi-python-client")
    command = str(generator) if generator.exists() else shutil.which("openapi-python-client")
    if command is None:
        services.missing("openapi-python-client is not installed (pip install -e '.[dev]')")
    folder = tmp_path_factory.mktemp("python-client")
    config = folder / "config.yml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [command, "generate", "--path", str(OPENAPI), "--meta", "none", "--output-path", str(folder / PACKAGE),
         "--config", str(config), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"the generator refused openapi.json:\n{done.stdout}\n{done.stderr}"
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def op(operation_id: str) -> Any:
    """The generated module of an operation: ``sessions-create_session`` -> api/sessions/sessions_create_session.py."""
    tag = operation_id.split("-")[0]
    return _module(f"api.{tag}.{operation_id.replace('-', '_')}")


def round_trip(url: str, key: str) -> dict[str, Any]:
    """Session, messages, buffer, memory, search, context, user, profile, and a typed problem."""
    client_module, models = _module("client"), _module("models")
    with client_module.AuthenticatedClient(base_url=url, token=key, timeout=30.0) as client:
        session = op("sessions-create_session").sync(
            client=client, body=models.SessionCreate(id="py-chat", user_id="pat")
        )
        assert isinstance(session, models.Session), session
        batch = models.MessageBatch(
            messages=[
                models.MessageIn(role=models.MessageInRole.USER, content="I restore old Vespa scooters in Bologna."),
                models.MessageIn(role=models.MessageInRole.ASSISTANT, content="Which model is your favourite?"),
                models.MessageIn(role=models.MessageInRole.USER, content="The 1963 GS160."),
            ]
        )
        stored = op("messages-add_messages").sync(session.id, client=client, body=batch)
        assert isinstance(stored, models.MessageList) and len(stored.items) == 3, stored

        buffer = op("messages-get_buffer").sync(session.id, client=client, last_n=2)
        assert isinstance(buffer, models.Buffer), buffer
        assert [m.content for m in buffer.messages] == ["Which model is your favourite?", "The 1963 GS160."]

        memory_body = models.MemoryCreate(user_id="pat", content="Pat keeps bees on the roof of the workshop.", importance=0.8)
        written = op("memories-create_memories").sync(client=client, body=memory_body)
        assert isinstance(written, models.MemoryWriteResults), written
        [result] = written.items
        assert result.status == models.MemoryWriteResultStatus.CREATED
        memory = result.memory

        search = op("memories-search_memories")
        deadline = time.monotonic() + 30
        while True:  # the vector index is written by a background job: a bounded poll
            results = search.sync(client=client, body=models.SearchRequest(query="bees on the roof", user_id="pat"))
            assert isinstance(results, models.SearchResults), results
            hits = [h for h in results.items if getattr(h, "memory", None) is not None and h.memory.id == memory.id]
            if hits or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert hits, "search never found the memory"

        built = op("context-build_context").sync(
            session.id, client=client, body=models.ContextRequest(max_tokens=400, query="what does Pat keep?")
        )
        assert isinstance(built, models.Context), built
        assert built.tokens <= 400 and "GS160" in built.prompt

        user = op("users-get_user").sync("pat", client=client)
        assert isinstance(user, models.User), user
        assert (user.session_count, user.message_count) == (1, 3)
        fields = models.ProfileUpdateFields.from_dict({"workshop": "Bologna"})
        op("users-update_profile").sync("pat", client=client, body=models.ProfileUpdate(fields=fields))
        profile = op("users-get_profile").sync("pat", client=client)
        assert isinstance(profile, models.Profile), profile
        assert profile.user_id == "pat" and profile.fields.to_dict() == {"workshop": "Bologna"}

        missing = op("sessions-get_session").sync_detailed("no-such-session", client=client)
        assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem), missing
        assert missing.parsed.code == "not_found"
        return {"session": session.id, "memory": memory.id, "score": hits[0].score, "context_tokens": built.tokens}


async def test_a_generated_python_client_does_a_round_trip(python_client: ModuleType, served: Served) -> None:
    started = time.monotonic()
    summary = await asyncio.to_thread(round_trip, served.url, served.key)
    assert summary["session"] == "py-chat" and summary["score"] > 0
    assert time.monotonic() - started < 60


async def test_a_generated_python_client_reads_problems_as_problems(python_client: ModuleType, served: Served) -> None:
    """A wrong key and a bad body come back as the Problem model, with their status and code."""
    client_module, models = _module("client"), _module("models")
    create = op("memories-create_memories")

    def calls() -> tuple[Any, Any]:
        with client_module.AuthenticatedClient(base_url=served.url, token="not-a-key") as anonymous:
            refused = create.sync_detailed(client=anonymous, body=models.MemoryCreate(user_id="pat", content="x"))
        with client_module.AuthenticatedClient(base_url=served.url, token=served.key) as client:
            invalid = create.sync_detailed(client=client, body=models.MemoryCreate(user_id="pat", content="x", importance=2.0))
        return refused, invalid

    refused, invalid = await asyncio.to_thread(calls)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem) and refused.parsed.code == "unauthorized"
    assert invalid.status_code == 422 and isinstance(invalid.parsed, models.Problem)
    [error] = invalid.parsed.additional_properties["errors"]
    assert error["loc"] == ["body", "importance"]
