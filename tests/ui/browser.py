"""Debian's Chromium driven by Playwright, for the inspector tests: one fresh profile per test,
every console error and page error kept, screenshots under tests/ui/artifacts/ (and, with
UPDATE_SCREENSHOTS=1, the embedded run's under docs/screenshots/ for the README)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.services import missing

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, ConsoleMessage, Page

CHROMIUM = Path(os.environ.get("MEMORY_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).with_name("artifacts")
SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 20_000


def require_browser() -> None:
    """Playwright and a Chromium binary are here; otherwise skip (fail under CI=true) saying how."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing("the browser tests need the playwright package: pip install -e '.[dev]' (or make install-dev)")
    if not CHROMIUM.exists():
        missing(f"the browser tests need Chromium at {CHROMIUM}: run scripts/ensure-browser.sh (apt-get install chromium)")


@dataclass
class Tab:
    """A page of the inspector and what its console said."""

    page: Page
    base_url: str
    shots: Path
    update_docs: bool
    errors: list[str] = field(default_factory=list)

    async def open(self, route: str = "") -> None:
        await self.page.goto(f"{self.base_url}/ui/{route}")

    async def shot(self, name: str) -> Path:
        """A full-page screenshot as an artifact (and as the README's, when updating those)."""
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        if self.update_docs:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / f"{name}.png")
        return path

    def console_errors(self, allowed: tuple[str, ...] = ()) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in allowed)]


def _keep(errors: list[str]) -> Any:
    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            where = message.location
            errors.append(f"console.{message.type}: {message.text} ({where.get('url')}:{where.get('lineNumber')})")

    return on_console


@asynccontextmanager
async def chromium(base_url: str, profile: Path, name: str, *, docs: bool = False) -> AsyncIterator[Tab]:
    """A fresh Chromium profile and one tab on ``base_url``; screenshots go to artifacts/``name``."""
    from playwright.async_api import async_playwright

    shots = ARTIFACTS / name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    async with async_playwright() as pw:
        context: BrowserContext = await pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 800},
            locale="en-GB",
            timezone_id="UTC",
            color_scheme="light",
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            tab = Tab(page, base_url, shots, docs and os.environ.get("UPDATE_SCREENSHOTS") == "1")
            page.on("console", _keep(tab.errors))
            page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
            try:
                yield tab
            except BaseException:
                await page.screenshot(path=str(shots / "failure.png"), full_page=True)
                print(f"inspector test failed: screenshots in {shots}; console: {tab.errors}")
                raise
        finally:
            await context.close()
