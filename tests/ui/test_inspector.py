"""The memory inspector (/ui) in a real headless Chromium against a live server on loopback.

The page reads only the public /v1 API, so each test seeds through that API and then checks what
a person would see: the users, one user, a session with a context preview, search with its score
parts, editing and deleting a memory, the queue with a retry. Any console or page error fails the
test, and a memory holding markup must show up as text with nothing of it run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.domain.indexing import SYNC_MEMORY
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.lifespan import State
from service.settings import Settings
from tests.api.auth_fixtures import bearer, new_tenant, secured
from tests.conftest import app_for, migrated, start
from tests.live import live_server
from tests.ui.browser import Tab, chromium, require_browser

HOSTILE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> remember the <b>bold</b> plan'
LISBON = "Ada's sister Grace lives in Lisbon"
PHONE = "Ada's old phone number is 555 0100"


@pytest.fixture
def browser_here() -> None:
    require_browser()


async def drained(api: httpx.AsyncClient, timeout: float = 60.0, **params: str) -> None:
    """Bounded poll until no background job of the tenant is pending."""
    deadline = time.monotonic() + timeout
    while True:
        state = (await api.get("/v1/admin/queue", params=params)).json()
        if state["pending"] == 0:
            return
        assert time.monotonic() < deadline, f"queue not drained: {state}"
        await asyncio.sleep(0.05)


async def seed(api: httpx.AsyncClient) -> dict[str, str]:
    """Two users, a session of messages over three days, memories of several types, profile fields."""
    now = datetime.now(UTC)

    def day(n: int) -> str:
        return (now - timedelta(days=n)).isoformat()

    assert (await api.post("/v1/sessions", json={"id": "ada-trip", "user_id": "ada", "agent_id": "planner"})).status_code == 201
    assert (await api.post("/v1/sessions", json={"id": "bob-chat", "user_id": "bob"})).status_code == 201
    lines = [
        ("user", "I am planning a trip to see my sister Grace.", 3),
        ("assistant", "Lovely! Where does she live?", 3),
        ("user", "She moved to Lisbon last year.", 2),
        ("assistant", "Lisbon is beautiful in spring.", 2),
        ("user", f"Note this for me: {HOSTILE}", 1),
        ("assistant", "Noted.", 0),
    ]
    messages = [{"role": r, "content": c, "created_at": day(n)} for r, c, n in lines]
    assert (await api.post("/v1/sessions/ada-trip/messages", json={"messages": messages})).status_code == 201
    bob = [{"role": "user", "content": "Hello, I like chess."}]
    assert (await api.post("/v1/sessions/bob-chat/messages", json={"messages": bob})).status_code == 201
    memories = [
        {"user_id": "ada", "content": LISBON, "importance": 0.9, "session_id": "ada-trip", "event_time": day(2)},
        {"user_id": "ada", "content": "Ada hiked Mount Rainier last summer", "type": "episodic", "importance": 0.4, "event_time": day(3)},
        {"user_id": "ada", "content": "To reset the router, hold its button for ten seconds", "type": "procedural", "event_time": day(1)},
        {"user_id": "ada", "content": HOSTILE, "importance": 0.6, "event_time": day(1)},
        {"user_id": "ada", "content": PHONE, "importance": 0.2, "event_time": day(0)},
        {"user_id": "bob", "content": "Bob plays chess every Sunday", "importance": 0.7},
    ]
    made = await api.post("/v1/memories", json={"memories": memories})
    assert made.status_code == 201, made.text
    ids = {m["memory"]["content"]: m["memory"]["id"] for m in made.json()["items"]}
    fields = {"fields": {"name": "Ada", "city": "<i>Paris</i>", "plan": {"trip": "Lisbon"}}}
    assert (await api.patch("/v1/users/ada/profile", json=fields)).status_code == 200
    await drained(api)
    return ids


async def park(state: State, tenant_id: str, subject: str, error: str) -> int:
    """A failed job, parked in one transaction (no worker can claim it first)."""
    async with state.backends.db.transaction() as repos:
        (job_id,) = await repos.jobs.enqueue(tenant_id, SYNC_MEMORY, [subject])
        await repos.jobs.fail(job_id, error)
    return job_id


async def nothing_ran(tab: Tab) -> None:
    """The hostile memory is on the page as text: no element of it, no script of it ran."""
    page = tab.page
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("#view img, #view script, #view b, #view i").count() == 0
    assert "<img src=x onerror=" in await page.locator("#view").inner_text()


async def no_sideways_scroll(tab: Tab) -> None:
    overflow = await tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


async def wait_text(tab: Tab, selector: str, text: str) -> None:
    await tab.page.locator(selector).filter(has_text=text).first.wait_for()


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[tuple[str, State]]:
    async with live_server(app) as url:
        yield url, app.state.memory


@pytest.mark.usefixtures("browser_here")
class TestInspector:
    async def test_every_page_on_a_live_server(
        self, served: tuple[str, State], settings: Settings, backend: str, tmp_path: Path
    ) -> None:
        base_url, state = served
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            ids = await seed(api)
            job_id = await park(state, settings.default_tenant, ids[LISBON], f"VectorIndexUnreachable: {HOSTILE}")

            async with chromium(base_url, tmp_path / "profile", backend, docs=backend == "embedded") as tab:
                page = tab.page

                # users: the list with counts, filtered as you type; the page is reachable by keyboard
                await tab.open()
                await page.locator("#users-table").wait_for()
                await page.keyboard.press("Tab")  # the first stop is the skip link, which moves focus to the content
                assert await page.evaluate("document.activeElement.id") == "skip"
                await page.keyboard.press("Enter")
                assert await page.evaluate("document.activeElement.id") == "view"
                rows = page.locator("#users-table tbody tr")
                assert await rows.count() == 2
                user = (await api.get("/v1/users/ada")).json()
                listed = (await api.get("/v1/memories", params={"user_id": "ada", "limit": 200})).json()["items"]
                cells = (await rows.filter(has_text="ada").locator("td").all_inner_texts())[1:4]
                assert cells == [str(user["session_count"]), "6", str(user["memory_count"])] and user["memory_count"] == len(listed)
                await tab.shot("users")
                await page.fill("#user-filter", "bo")
                assert await rows.count() == 1 and "bob" in await rows.first.inner_text()
                await page.fill("#user-filter", "")

                # a user: profile, sessions, memories by type, and the chart of messages and memories per day
                await page.get_by_role("link", name="ada", exact=True).click()
                await page.locator("#activity-chart svg.chart").wait_for()
                memory_days = {m["event_time"][:10] for m in listed}
                assert await page.locator("#activity-chart rect.s-messages").count() == 4  # four days with messages
                assert await page.locator("#activity-chart rect.s-memories").count() == len(memory_days)
                legend = await page.locator("#activity-chart .legend").inner_text()
                assert "messages (6)" in legend and f"memories ({len(listed)})" in legend
                assert LISBON in await page.locator("#profile-facts").inner_text()
                assert await page.locator("#memories-table tbody tr").count() == len(listed)
                procedural = [m for m in listed if m["type"] == "procedural"]
                await page.get_by_role("button", name=f"procedural ({len(procedural)})").click()
                shown = await page.locator("#memories-table tbody tr td:nth-child(2)").all_inner_texts()
                assert shown == ["procedural"] * len(procedural)
                assert "reset the router" in await page.locator("#memories-table").inner_text()
                await page.get_by_role("button", name=f"All ({len(listed)})").click()
                assert "<i>Paris</i>" in await page.locator("main").inner_text()
                await nothing_ran(tab)
                await tab.shot("user")

                # a session: messages, buffer, summary, and a context preview at a chosen budget (Enter submits)
                await page.get_by_role("link", name="ada-trip").first.click()
                await page.locator("#messages li").first.wait_for()
                assert await page.locator("#messages li").count() == 6
                assert await page.locator("#buffer-table tbody tr").count() == 6
                await page.fill("#ctx-max", "300")
                await page.fill("#ctx-query", "where does Grace live")
                await page.press("#ctx-query", "Enter")
                await page.locator("#context-result").wait_for()
                total = await page.locator("#context-tokens").inner_text()
                used = int(total.split(" of ")[0])
                assert total.endswith("of 300 tokens") and 0 < used <= 300
                sections = await page.locator("#context-result .context-section").evaluate_all("els => els.map(e => e.dataset.section)")
                same = {"max_tokens": 300, "query": "where does Grace live"}
                packed = (await api.post("/v1/sessions/ada-trip/context", json=same)).json()
                assert sections == [x["name"] for x in packed["sections"]] and "memories" in sections
                assert used == packed["tokens"]
                memories = page.locator('.context-section[data-section="memories"]')
                assert await memories.locator("tbody tr").count() >= 1
                assert "Lisbon" in await memories.locator("pre").inner_text()
                await nothing_ran(tab)
                await tab.shot("session")

                # search: query, mode and weights; ranked hits, each score part drawn as a bar
                await page.get_by_role("link", name="Search", exact=True).click()
                await page.fill("#s-query", "Where does Grace live?")
                await page.fill("#s-user", "ada")
                await page.locator("details.more summary", has_text="Weights").click()
                await page.fill("#w-importance", "0.5")
                await page.press("#s-query", "Enter")
                await page.locator("#search-results .hit").first.wait_for()
                weights = {"semantic": 1, "keyword": 1, "speaker": 1, "date": 0.8, "context": 0.9, "recency": 0, "importance": 0.5}
                same = {"query": "Where does Grace live?", "user_id": "ada", "mode": "hybrid", "limit": 10, "weights": weights}
                expected = (await api.post("/v1/memories/search", json=same)).json()["items"]
                hits = page.locator("#search-results .hit")
                assert await hits.locator(".hit-text").all_inner_texts() == [h["memory"]["content"] for h in expected]
                rank = next(i for i, h in enumerate(expected) if h["memory"]["content"] == LISBON)
                hit = hits.nth(rank)
                parts = await hit.locator("tr[data-part]").evaluate_all("rows => rows.map(r => r.dataset.part)")
                assert parts == ["semantic", "keyword", "speaker", "date", "context", "recency", "importance"]
                for part, value in expected[rank]["parts"].items():
                    fill = hit.locator(f'tr[data-part="{part}"] .bar-fill')
                    width = await fill.evaluate("e => e.getBoundingClientRect().width / e.parentElement.clientWidth")
                    assert abs(width - value) < 0.02, (part, width, value)  # each part drawn to its size
                importance = await hit.locator('tr[data-part="importance"] td.num').inner_text()
                assert importance == f"{0.9 * 0.5:.3f}"  # the part (its importance) times the weight given
                assert "user_id=ada" in page.url
                await tab.shot("search")

                # a memory: edit it (after confirming), and the new version shows as a diff
                await hit.get_by_role("link").click()
                await page.locator("#versions li").first.wait_for()
                assert await page.locator("#versions li").count() == 1
                await page.fill("#e-content", "Ada's sister Grace lives in Porto now")
                await page.fill("#e-importance", "0.7")
                await page.get_by_role("button", name="Save changes…").click()
                dialog = page.locator("#confirm-dialog")
                await dialog.wait_for()
                assert "Porto" in await dialog.inner_text()
                await dialog.get_by_role("button", name="Save").click()
                await wait_text(tab, "#status", "Saved version 2")
                assert await page.locator("#versions li").count() == 2
                newest = page.locator('#versions li[data-version="2"]')
                content = newest.locator(".change").filter(has=page.locator("h4", has_text="content"))
                assert await content.locator("ins").all_inner_texts() == ["Porto now"]
                assert await content.locator("del").all_inner_texts() == ["Lisbon"]
                importance = newest.locator(".change").filter(has=page.locator("h4", has_text="importance"))
                assert (await importance.locator("del").inner_text(), await importance.locator("ins").inner_text()) == ("0.9", "0.7")
                assert "Porto" in await page.locator("#memory-content").inner_text()
                await tab.shot("memory")
                assert (await api.get(f"/v1/memories/{ids[LISBON]}")).json()["version"] == 2

                # cancelling a confirmation changes nothing; confirming a delete removes the memory
                await tab.open(f"#/memories/{ids[PHONE]}")
                await page.locator("#delete-memory").click()
                await page.keyboard.press("Escape")
                assert not await dialog.is_visible()
                assert (await api.get(f"/v1/memories/{ids[PHONE]}")).status_code == 200
                await page.locator("#delete-memory").click()
                await dialog.get_by_role("button", name="Delete").click()
                await wait_text(tab, "#status", "deleted")
                await page.locator("#memories-table").wait_for()
                assert "#/users/ada" in page.url
                assert PHONE not in await page.locator("#memories-table").inner_text()
                assert await page.locator("#memories-table tbody tr").count() == len(listed) - 1
                assert (await api.get(f"/v1/memories/{ids[PHONE]}")).status_code == 404
                await tab.open(f"#/memories/{ids[PHONE]}")  # a deleted memory still shows its history
                await page.locator('#versions li[data-version="2"].op-deleted').wait_for()

                # the queue: pending and failed jobs, the parked job's error as text, and a retry
                await page.get_by_role("link", name="Queue", exact=True).click()
                await page.locator("#failures-table").wait_for()
                assert await page.locator("#queue-failed").inner_text() == "1"
                assert "<script>" in await page.locator("#failures-table").inner_text()
                await nothing_ran(tab)
                await tab.shot("queue")
                await page.get_by_role("button", name=f"Retry job {job_id}").click()
                await wait_text(tab, "#status", f"Job {job_id} queued again")
                assert await page.locator("#queue-failed").inner_text() == "0"
                await page.locator("#no-failures").wait_for()
                await drained(api)
                await page.get_by_role("button", name="Refresh").click()
                await wait_text(tab, "#queue-pending", "0")

                # a phone: nothing scrolls sideways
                await page.set_viewport_size({"width": 390, "height": 844})
                phone = (
                    ("#/users", "#users-table"),
                    ("#/sessions/ada-trip", "#messages"),
                    ("#/search?user_id=ada&query=Grace", "#search-results .hit"),
                    (f"#/memories/{ids[LISBON]}", "#versions"),
                    ("#/queue", "#queue-stats"),
                    ("#/users/ada", "#activity-chart svg"),
                )
                for route, ready in phone:
                    await tab.open(route)
                    await page.locator(ready).first.wait_for()
                    await no_sideways_scroll(tab)
                await tab.shot("phone-user")

                assert tab.console_errors() == []


@pytest.mark.usefixtures("browser_here")
class TestWithApiKeys:
    @pytest.fixture
    async def secure_served(
        self, settings: Settings, embedder: SentenceTransformerEmbedder
    ) -> AsyncIterator[tuple[str, str]]:
        secure = secured(settings)
        await migrated(secure.sql_url)
        assert secure.admin_key is not None
        async with live_server(app_for(secure, embedder)) as url:
            yield url, secure.admin_key.get_secret_value()

    @pytest.mark.parametrize("backend", ["embedded"])
    async def test_it_asks_for_a_key_and_keeps_it_in_the_tab(
        self, secure_served: tuple[str, str], tmp_path: Path
    ) -> None:
        base_url, admin_key = secure_served
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            tenant = await new_tenant(api, admin_key)
            made = await api.post("/v1/sessions", json={"user_id": "carol"}, headers=tenant.headers)
            assert made.status_code == 201

        async with chromium(base_url, tmp_path / "profile", "keys") as tab:
            page = tab.page
            await tab.open()
            key_dialog = page.locator("#key-dialog")
            await key_dialog.wait_for()  # the first call had no key: a 401, and the page asks for one
            assert "needs an API key" in await key_dialog.inner_text()
            await page.fill("#key-input", tenant.key)
            await page.press("#key-input", "Enter")
            await page.locator("#users-table").wait_for()
            assert "carol" in await page.locator("#users-table").inner_text()
            stored = await page.evaluate("[sessionStorage.getItem('memory-inspector:api-key'), localStorage.length, document.cookie]")
            assert stored == [tenant.key, 0, ""]

            # a client key may not read the queue: the page says so and takes another key
            await page.get_by_role("link", name="Queue", exact=True).click()
            await wait_text(tab, "h1", "Not allowed with this key")
            await page.get_by_role("button", name="Use another key").click()
            await page.fill("#key-input", admin_key)
            await page.press("#key-input", "Enter")
            await page.locator("#queue-stats").wait_for()
            await page.fill("#q-tenant", tenant.id)
            await page.press("#q-tenant", "Enter")
            await wait_text(tab, "#queue-pending", "0")
            assert f"tenant_id={tenant.id}" in page.url

            # a new tab starts without the key
            other = await page.context.new_page()
            await other.goto(f"{base_url}/ui/")
            await other.locator("#key-dialog").wait_for()
            assert await other.evaluate("sessionStorage.length") == 0
            await other.close()

            allowed = ("status of 401", "status of 403")  # Chromium logs refused calls; those were expected
            assert tab.console_errors(allowed) == []
            assert any("401" in e for e in tab.errors) and any("403" in e for e in tab.errors)


class TestServed:
    @pytest.mark.parametrize("backend", ["embedded"])
    async def test_the_page_is_public_strict_and_out_of_the_schema(
        self, settings: Settings, embedder: SentenceTransformerEmbedder
    ) -> None:
        secure = secured(settings)
        await migrated(secure.sql_url)
        app = app_for(secure, embedder)
        async with start(app) as client:
            for path in ("/ui", "/ui/"):
                page = await client.get(path)  # no key: the page is public, its data calls are not
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                assert "default-src 'none'" in page.headers["content-security-policy"]
                assert 'src="/ui/app.js"' in page.text
            for asset, kind in (("app.js", "javascript"), ("pages/search.js", "javascript"), ("app.css", "text/css")):
                answer = await client.get(f"/ui/{asset}")
                assert answer.status_code == 200 and kind in answer.headers["content-type"], asset
                assert answer.headers["x-content-type-options"] == "nosniff"
            assert (await client.get("/ui/nothing.js")).status_code == 404
            assert (await client.get("/ui/..%2F..%2Fsettings.py")).status_code == 404  # only the package's own files
            assert (await client.get("/ui/%2e%2e/routes.py")).status_code == 404
            metrics = (await client.get("/metrics")).text  # one bounded route label for every file
            assert 'route="/ui/{asset}",status_class="2xx"} 3.0' in metrics
            assert 'route="/ui/{asset}",status_class="4xx"} 3.0' in metrics
            assert (await client.get("/v1/users")).status_code == 401
            paths: dict[str, Any] = app.openapi()["paths"]
            assert not any(p.startswith("/ui") for p in paths)
            assert "/v1/admin/queue/{job_id}/retry" in paths
            assert (await client.get("/v1/users", headers=bearer(secure.admin_key.get_secret_value()))).status_code == 200  # type: ignore[union-attr]

    def test_no_stored_text_reaches_the_page_as_html(self) -> None:
        """The page's own scripts never parse strings as HTML (the browser test checks the result)."""
        static = Path(__file__).resolve().parents[2] / "service" / "ui" / "static"
        for script in static.rglob("*.js"):
            code = script.read_text()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in code, f"{script.name} uses {sink}"
