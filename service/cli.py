"""The ``memory-service`` command: serve, migrate, worker, reindex, keys, openapi."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import ipaddress
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from service.main import create_app
from service.observability.logging import configure_logging
from service.observability.metrics import prepare_multiprocess_dir
from service.settings import Settings
from service.storage.sql import migrate as migrations
from service import keys_cli
from service.workers import runner

log = logging.getLogger("service.cli")


def _migrate(settings: Settings) -> int:
    migrations.upgrade(settings.sql_url)
    log.info("database migrated to head")
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if settings.auth_disabled and not _loopback(args.host) and not args.insecure:
        print(
            f"memory-service: refusing to serve {args.host} with MEMORY_AUTH_DISABLED=true: anyone who reaches "
            "the port could read and delete every memory. Bind 127.0.0.1, enable keys, or pass --insecure.",
            file=sys.stderr,
        )
        return 2
    if settings.auth_disabled:
        print(f"memory-service: authentication is off; serving {args.host}:{args.port} without API keys", file=sys.stderr)

    embedded = not settings.redis_url or not settings.qdrant_url
    if args.workers > 1 and embedded:
        print(
            "memory-service: --workers > 1 needs MEMORY_REDIS_URL and MEMORY_QDRANT_URL "
            "(the embedded buffer and vector index live in one process)",
            file=sys.stderr,
        )
        return 2
    if not args.no_migrate:
        _migrate(settings)
    if args.no_workers:
        os.environ["MEMORY_RUN_WORKERS"] = "false"
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Several uvicorn processes: metrics go through files so /metrics adds them all up.
        folder = prepare_multiprocess_dir(Path(tempfile.gettempdir()) / f"memory-service-metrics-{os.getpid()}")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,  # service.access logs each request with its id and route
        proxy_headers=True,
    )
    return 0


def openapi_document() -> str:
    """The OpenAPI document the service serves, as committed in openapi.json (no backend is opened)."""
    document = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _mcp(args: argparse.Namespace) -> int:
    if args.transport == "http" and not _loopback(args.host) and not args.insecure:
        print(
            f"memory-service mcp: refusing to serve {args.host}: the MCP server acts with its API key for "
            "anyone who reaches the port. Bind 127.0.0.1 or pass --insecure.",
            file=sys.stderr,
        )
        return 2
    from service.integrations import mcp_server  # the MCP SDK loads only for this command

    return mcp_server.run(
        transport=args.transport, url=args.url, api_key=args.api_key, user_id=args.user_id, host=args.host,
        port=args.port,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memory-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")
    serve.add_argument("--no-workers", action="store_true", help="leave background jobs to `memory-service worker`")
    serve.add_argument(
        "--insecure", action="store_true", help="allow MEMORY_AUTH_DISABLED=true on a non-loopback address"
    )
    commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    worker = commands.add_parser("worker", help="run the background jobs (indexing, purges) in this process")
    worker.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")
    commands.add_parser("reindex", help="rebuild the vector index from the SQL store")
    mcp = commands.add_parser("mcp", help="serve the memory tools over MCP (stdio or streamable HTTP) for a running service")
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    mcp.add_argument("--url", default=os.environ.get("MEMORY_SERVICE_URL", "http://127.0.0.1:8000"),
                     help="the memory service (default $MEMORY_SERVICE_URL, else http://127.0.0.1:8000)")
    mcp.add_argument("--api-key", default=os.environ.get("MEMORY_API_KEY"), help="its API key (default $MEMORY_API_KEY)")
    mcp.add_argument("--user-id", help="act for this user only (without it, every tool takes a user_id)")
    mcp.add_argument("--host", default="127.0.0.1", help="with --transport http")
    mcp.add_argument("--port", type=int, default=8765, help="with --transport http (path /mcp)")
    mcp.add_argument("--insecure", action="store_true", help="allow --transport http on a non-loopback address")
    commands.add_parser("openapi", help="print the OpenAPI document (JSON) that the service serves")
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="issue a key (creating the tenant if needed) and print it")
    create.add_argument("--tenant", required=True, help="the tenant the key is bound to")
    create.add_argument("--role", choices=["client", "admin"], default="client")
    create.add_argument("--name", help="a label for people")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    return parser


def _report_native_crashes() -> None:
    """A native crash (the model's runtime, the vector engine) prints every thread's Python stack."""
    try:
        faulthandler.enable()
    except (AttributeError, ValueError):  # stderr is no file (called in process, its output captured)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _report_native_crashes()
    # OpenMP threads that spin while idle starve the event loop on small machines; set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format.value)
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "worker":
        if not args.no_migrate:
            _migrate(settings)
        asyncio.run(runner.run_worker(settings))
        return 0
    if args.command == "keys":
        _migrate(settings)
        return asyncio.run(keys_cli.run(settings, args))
    if args.command == "mcp":
        return _mcp(args)
    if args.command == "reindex":
        _migrate(settings)
        done = asyncio.run(runner.reindex(settings))
        print(f"reindexed {done.memories} memories and {done.documents} documents")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
