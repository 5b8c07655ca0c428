"""Dockerfile: multi-stage, torch CPU before the package, non-root, healthcheck, offline model, CMD.

There is no Docker engine where the tests run, so the file is checked by reading it.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, unknown_env_names

DOCKERFILE = REPO / "Dockerfile"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM it belongs to; -1 before the first FROM
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    logical = ""
    stage = -1
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1].strip() + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
        logical = ""
    return instructions


def env_pairs(args: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(args))


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    count = max(i.stage for i in instructions) + 1
    return [[i for i in instructions if i.stage == n] for n in range(count)]


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def _base_image(instructions: list[Instruction], from_args: str) -> str:
    image = from_args.split()[0]
    defaults = {
        k: v
        for i in instructions
        if i.keyword == "ARG" and i.stage == -1 and "=" in i.args
        for k, v in [i.args.split("=", 1)]
    }
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], image)


def _runs(stage: list[Instruction]) -> list[str]:
    return [i.args for i in stage if i.keyword == "RUN"]


class TestStages:
    def test_multi_stage_with_named_builder(self, stages: list[list[Instruction]]) -> None:
        assert len(stages) >= 2
        first_from = stages[0][0]
        assert first_from.keyword == "FROM" and re.search(r"\bAS\s+builder\b", first_from.args, re.I)

    def test_both_stages_on_python_311_slim(self, instructions: list[Instruction], stages: list[list[Instruction]]) -> None:
        for stage in stages:
            assert _base_image(instructions, stage[0].args) == "python:3.11-slim"

    def test_runtime_copies_the_environment_from_the_builder(self, final: list[Instruction]) -> None:
        copies = [i.args for i in final if i.keyword == "COPY"]
        assert any(c.startswith("--from=builder") for c in copies)
        # Build tools and pip caches stay behind: the runtime stage installs nothing with pip.
        assert not any("pip install" in run for run in _runs(final))


class TestTorchFirst:
    def test_torch_cpu_installed_before_the_package(self, stages: list[list[Instruction]]) -> None:
        runs = _runs(stages[0])
        torch_at = next(n for n, r in enumerate(runs) if "torch==" in r and "pip install" in r)
        package_at = next(n for n, r in enumerate(runs) if re.search(r"pip install (\S+ )*\.(\s|$)", r))
        assert torch_at < package_at
        torch_run = runs[torch_at]
        assert f"--index-url {TORCH_CPU_INDEX}" in torch_run
        assert "torch==2.13.0" in torch_run

    def test_torch_pin_matches_pyproject(self, stages: list[list[Instruction]]) -> None:
        deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        pinned = next(d for d in deps if re.match(r"torch\b", d))
        torch_run = next(r for r in _runs(stages[0]) if "torch==" in r)
        assert pinned.replace(" ", "") in torch_run.replace(" ", "")

    def test_copied_sources_exist_and_are_not_ignored(self, instructions: list[Instruction]) -> None:
        ignored = {
            line.strip()
            for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        for copy in (i for i in instructions if i.keyword == "COPY" and not i.args.startswith("--from")):
            *sources, _dest = copy.args.split()
            matched = [p for src in sources for p in REPO.glob(src)]
            assert matched, copy.args
            for src in sources:
                if not any(ch in src for ch in "*?["):
                    assert (REPO / src).exists(), src
                    assert src not in ignored, f"{src} is in .dockerignore"


class TestRuntime:
    def test_non_root_user_before_cmd(self, final: list[Instruction]) -> None:
        users = [n for n, i in enumerate(final) if i.keyword == "USER"]
        assert users, "the runtime stage must switch to a non-root user"
        user = final[users[-1]].args.split(":")[0]
        assert user not in {"root", "0"}
        assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"
        cmd_at = next(n for n, i in enumerate(final) if i.keyword == "CMD")
        assert users[-1] < cmd_at

    def test_offline_model_and_data_dir(self, final: list[Instruction]) -> None:
        env: dict[str, str] = {}
        for i in final:
            if i.keyword == "ENV":
                env |= env_pairs(i.args)
        assert env["HF_HUB_OFFLINE"] == "1"
        assert env["MEMORY_DATA_DIR"] == "/data"
        assert unknown_env_names(set(env)) == set()
        volumes = [i.args for i in final if i.keyword == "VOLUME"]
        assert any("/data" in v for v in volumes)

    def test_model_is_loaded_once_at_build(self, final: list[Instruction]) -> None:
        user_at = max(n for n, i in enumerate(final) if i.keyword == "USER")
        checks = [
            n for n, i in enumerate(final) if i.keyword == "RUN" and "SentenceTransformer" in i.args and "encode" in i.args
        ]
        assert checks, "a build step must load the packaged model"
        assert checks[0] > user_at, "load it as the runtime user, after HF_HUB_OFFLINE is set"

    def test_expose_and_healthcheck(self, final: list[Instruction]) -> None:
        assert any(i.keyword == "EXPOSE" and i.args.split()[0] == "8000" for i in final)
        health = [i.args for i in final if i.keyword == "HEALTHCHECK"]
        assert len(health) == 1
        check = health[0]
        assert "/healthz" in check and "python" in check
        assert "curl" not in check and "wget" not in check  # neither exists in python:3.11-slim
        exec_form = json.loads(check[check.index("CMD") + 3 :].strip())
        assert exec_form[0] == "python"

    def test_cmd(self, final: list[Instruction]) -> None:
        cmds = [i.args for i in final if i.keyword == "CMD"]
        assert len(cmds) == 1
        assert json.loads(cmds[0]) == ["memory-service", "serve", "--host", "0.0.0.0"]


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "data", "tests"} <= ignored


def test_parser_joins_continuations() -> None:
    parsed = parse("FROM a AS b\n# note\nRUN one \\\n    two \\\n    # inner comment\n    three\nCMD [\"x\"]\n")
    assert [(i.keyword, i.args) for i in parsed] == [("FROM", "a AS b"), ("RUN", "one two three"), ("CMD", '["x"]')]
    assert Path(DOCKERFILE).is_file()
