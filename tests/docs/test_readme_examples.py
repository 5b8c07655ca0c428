"""The README's Quick start curl examples, run as written against a live service, so they stay true.

Each fenced ``bash`` block of the "Quick start" section that calls curl runs in bash (``set -euo
pipefail``) with localhost:8000 pointed at the live server and curl made to fail on an HTTP error
(``--fail-with-body``), so every call must succeed. Lines that start the service or choose its admin
key are left to the test, which serves the app itself (with that key, for the keys example).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests import services
from tests.api.auth_fixtures import bearer, secured
from tests.conftest import app_for, migrated
from tests.live import live_server

README = Path(__file__).resolve().parents[2] / "README.md"
#: Lines the test does itself: starting the service, and choosing the admin key it starts with.
LEFT_TO_THE_TEST = re.compile(r"^\s*(make run\b|export MEMORY_ADMIN_KEY=)")
#: Every curl call succeeds, or the block stops there (bash -e); each call is counted.
PRELUDE = 'curl() { echo call >> "$CURL_LOG"; command curl --fail-with-body --show-error "$@"; }\n'


@dataclass(frozen=True, slots=True)
class Example:
    script: str
    calls: int  # curl calls written in the block

    @property
    def needs_admin_key(self) -> bool:
        return "MEMORY_ADMIN_KEY" in self.script


def section(markdown: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def curl_examples(markdown: str) -> list[Example]:
    """The Quick start's bash blocks that call curl against localhost:8000, minus the lines left to the test."""
    blocks = re.findall(r"^```bash\n(.*?)^```", section(markdown, "Quick start"), re.S | re.M)
    examples = []
    for block in blocks:
        if "curl" not in block or "localhost:8000" not in block:
            continue
        kept = [line for line in block.splitlines() if not LEFT_TO_THE_TEST.match(line)]
        script = "\n".join(kept) + "\n"
        examples.append(Example(script, len(re.findall(r"\bcurl\b", script))))
    return examples


async def run_example(example: Example, url: str, tmp_path: Path, admin_key: str | None = None) -> str:
    """Run the block against ``url``; its stdout. Fails the test unless every curl call succeeded."""
    log = tmp_path / "curl.log"
    log.write_text("")
    script = PRELUDE + example.script.replace("localhost:8000", url.removeprefix("http://"))
    env = {
        **os.environ,
        "CURL_LOG": str(log),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # python3: the venv's
    }
    if admin_key is not None:
        env["MEMORY_ADMIN_KEY"] = admin_key
    # The server shares this event loop: await bash, never block on it.
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"a README example failed:\n{script}\nstdout: {stdout.decode()}\nstderr: {stderr.decode()}"
    calls = log.read_text().splitlines()
    assert len(calls) == example.calls, (calls, example.script)
    return stdout.decode()


@pytest.fixture
def examples() -> list[Example]:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        services.missing("curl and bash are needed to run the README's examples")
    found = curl_examples(README.read_text())
    assert len(found) == 2, "the Quick start has a first conversation and a keys example"
    return found


def test_the_quick_start_blocks_are_found() -> None:
    first, keys = curl_examples(README.read_text())
    assert not first.needs_admin_key and first.calls == 3
    assert keys.needs_admin_key and keys.calls == 3
    assert "make run" not in first.script + keys.script


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_first_conversation_works_as_written(examples: list[Example], app: Any, tmp_path: Path) -> None:
    first = examples[0]
    async with live_server(app) as url:
        output = await run_example(first, url, tmp_path)
        async with httpx.AsyncClient(base_url=url) as client:
            stored = (await client.get("/v1/sessions/chat-1/messages")).json()["items"]
    assert [m["content"] for m in stored][-1] == "Loving the light, hating the hills."
    assert "Loving the light, hating the hills." in output.splitlines()[-1], "the last call printed the buffer"


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_keys_example_works_as_written(
    examples: list[Example], settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    keys = examples[1]
    settings = secured(settings)
    await migrated(settings.sql_url)
    admin_key = settings.admin_key.get_secret_value()  # type: ignore[union-attr]
    async with live_server(app_for(settings, embedder)) as url:
        output = await run_example(keys, url, tmp_path, admin_key)
        async with httpx.AsyncClient(base_url=url) as client:
            listed = (await client.get("/v1/admin/keys", params={"tenant_id": "acme"}, headers=bearer(admin_key))).json()
    assert [k["role"] for k in listed["items"]] == ["client"], "the example issued one client key for acme"
    assert '"items":[]' in output.splitlines()[-1].replace(" ", ""), "the client key listed acme's (no) sessions"
