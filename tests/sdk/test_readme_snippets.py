"""The Python snippets of README.md's SDK section and of sdk/python/README.md's quick start run as written."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

from fastapi import FastAPI

from tests.live import live_server

REPO = Path(__file__).resolve().parents[2]
DEFAULT_URL = '"http://127.0.0.1:8000"'


def first_python_block(markdown: str, start: str, end: str | None = None) -> str:
    text = markdown[markdown.index(start) : markdown.index(end) if end else None]
    match = re.search(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert match, f"no python block after {start!r}"
    return match.group(1)


def run(code: str, url: str) -> str:
    assert DEFAULT_URL in code, "the snippet names the default address"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace(DEFAULT_URL, repr(url)), "<readme>", "exec"), {})  # noqa: S102 (our own README)
    return out.getvalue()


async def test_the_readme_snippets_run(app: FastAPI) -> None:
    readme = (REPO / "README.md").read_text()
    service_snippet = first_python_block(readme, "## Python SDK, LangChain and MCP", "## Security")
    sdk_snippet = first_python_block((REPO / "sdk/python/README.md").read_text(), "## Quick start")
    async with live_server(app) as url:
        printed = await asyncio.to_thread(run, service_snippet, url)
        assert "Ann is allergic to peanuts." in printed and "# Recent messages" in printed
        printed = await asyncio.to_thread(run, sdk_snippet, url)
        assert "Lisbon" in printed and "Ann is allergic to peanuts." in printed
