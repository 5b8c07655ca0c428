"""A TypeScript client generated from openapi.json (openapi-typescript types, openapi-fetch calls),
type-checked strictly by tsc and run with node through the same round trip as the Python client.

The tools come from tests/clients/ts/package-lock.json, installed with ``npm ci`` into
tests/clients/ts/node_modules (ignored by git) when that is missing or stale. Without node or npm
the test is skipped, and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.clients.conftest import OPENAPI, Served

TS = Path(__file__).with_name("ts")
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "lib": ["ES2022", "DOM"],
        "types": ["node"],
        "strict": True,
        "noEmitOnError": True,
        "skipLibCheck": True,
        "outDir": "out",
    },
    "files": ["roundtrip.ts"],
}


@dataclass(frozen=True, slots=True)
class Program:
    node: str
    script: Path


def _run(command: list[str], cwd: Path, what: str, timeout: float = 300) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def _installed() -> bool:
    """node_modules holds exactly what package-lock.json pins (npm's own record of the install)."""
    hidden = TS / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False
    pinned = {k: v.get("version") for k, v in json.loads((TS / "package-lock.json").read_text())["packages"].items() if k}
    present = {k: v.get("version") for k, v in json.loads(hidden.read_text())["packages"].items() if k}
    return pinned == present


@pytest.fixture(scope="session")
def typescript_client(tmp_path_factory: pytest.TempPathFactory) -> Program:
    """roundtrip.ts compiled against types generated from openapi.json (once per test run)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        services.missing("node and npm are needed for the TypeScript client test (apt-get install nodejs npm)")
    if not _installed():
        _run([npm, "ci", "--no-audit", "--no-fund"], TS, "npm ci", timeout=600)
    folder = tmp_path_factory.mktemp("typescript-client")
    (folder / "node_modules").symlink_to(TS / "node_modules", target_is_directory=True)
    (folder / "package.json").write_text('{"type": "module"}\n')
    (folder / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2))
    shutil.copy(TS / "roundtrip.ts", folder / "roundtrip.ts")
    bin_ = TS / "node_modules" / ".bin"
    # --default-non-nullable false: a request field with a default may be left out (7.x requires it otherwise).
    generate = [str(bin_ / "openapi-typescript"), str(OPENAPI), "-o", str(folder / "schema.d.ts"), "--default-non-nullable", "false"]
    _run(generate, folder, "openapi-typescript")
    _run([str(bin_ / "tsc"), "-p", str(folder)], folder, "tsc (the round trip does not type-check against the document)")
    return Program(node, folder / "out" / "roundtrip.js")


async def test_a_generated_typescript_client_does_a_round_trip(typescript_client: Program, served: Served) -> None:
    # The server shares this event loop: the node process must be awaited, not waited for.
    process = await asyncio.create_subprocess_exec(
        typescript_client.node, str(typescript_client.script), served.url, served.key,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"{stdout.decode()}\n{stderr.decode()}"
    summary: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["session"] == "ts-chat" and summary["score"] > 0 and summary["problem"] == "not_found"
