"""/ui: the memory inspector's files, served from the package, public and out of the API schema.

The page holds no key of its own: it asks for one and sends it on the /v1 calls it makes, so it
sees exactly what any client with that key sees. Its Content-Security-Policy lets it run only its
own scripts and talk only to this origin, a second wall behind rendering every stored text as text.
The files are a fixed list read at import (no path from a request reaches the file system), and
their route template ``/ui/{asset}`` keeps the request metrics' labels bounded.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

from service.domain.errors import NotFound

STATIC = Path(__file__).with_name("static")
ASSETS: dict[str, Path] = {p.relative_to(STATIC).as_posix(): p for p in sorted(STATIC.rglob("*")) if p.is_file()}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no file {name!r} in the inspector")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), headers=HEADERS)


@router.get("/ui")
@router.get("/ui/")
async def inspector() -> FileResponse:
    """The inspector's page (its data comes from /v1 with the key the user gives it)."""
    return _file("index.html")


@router.get("/ui/{asset:path}")
async def inspector_asset(asset: str) -> FileResponse:
    """One of the page's scripts, styles or icons."""
    return _file(asset)


def install(app: FastAPI) -> None:
    """Serve the inspector at /ui."""
    app.include_router(router)
