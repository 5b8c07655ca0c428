"""/docs (Swagger UI) and /redoc work offline: their scripts and styles come from the package, they
need no API key, and they stay out of the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.settings import Settings
from tests.api.auth_fixtures import secured
from tests.conftest import app_for, migrated, start

PAGES = ("/docs", "/redoc")
TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


class References(HTMLParser):
    """Every URL a page loads or links: src, href, and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls + re.findall(r"url: '([^']+)'", html)  # Swagger UI's document, in its script


@pytest.fixture
async def keyed_app(settings: Settings, embedder: Any) -> FastAPI:
    """An app that requires API keys."""
    settings = secured(settings)
    await migrated(settings.sql_url)
    return app_for(settings, embedder)


@pytest.fixture
async def keyed(keyed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of that app, given no key."""
    async with start(keyed_app) as client:
        yield client


@pytest.mark.parametrize("backend", ["embedded"])
class TestDocsPages:
    @pytest.mark.parametrize("page", PAGES)
    async def test_the_page_loads_nothing_from_outside_the_service(self, keyed: httpx.AsyncClient, page: str) -> None:
        response = await keyed.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", response.text, re.I), response.text
        urls = references(response.text)
        assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls), urls
        for url in urls:
            assert url.startswith("/"), url
            asset = await keyed.get(url)
            assert asset.status_code == 200, (url, asset.status_code)
            suffix = url[url.rfind(".") :]
            if suffix in TYPES:
                assert asset.headers["content-type"].split(";")[0] in TYPES[suffix], (url, asset.headers["content-type"])
                assert len(asset.content) > 0

    async def test_the_assets_are_the_real_libraries(self, keyed: httpx.AsyncClient) -> None:
        swagger = await keyed.get("/docs/assets/swagger-ui-bundle.js")
        redoc = await keyed.get("/docs/assets/redoc.standalone.js")
        assert b"SwaggerUIBundle" in swagger.content and len(swagger.content) > 500_000
        assert b"Redoc" in redoc.content and len(redoc.content) > 500_000
        assert (await keyed.get("/docs/assets/LICENSE.md")).status_code == 200
        missing = await keyed.get("/docs/assets/nothing-here.js")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")

    async def test_the_pages_are_out_of_the_document(self, keyed: httpx.AsyncClient) -> None:
        paths = (await keyed.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/docs", "/redoc"))], sorted(paths)

    async def test_behind_a_proxy_prefix_the_pages_load_from_under_it(
        self, keyed_app: FastAPI, keyed: httpx.AsyncClient
    ) -> None:
        transport = httpx.ASGITransport(app=keyed_app, root_path="/memory")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for page in PAGES:
                urls = references((await client.get(f"/memory{page}")).text)
                assert urls and all(u.startswith("/memory/") for u in urls), urls
                assert (await client.get(urls[-1])).status_code == 200
