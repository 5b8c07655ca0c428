"""The application factory."""

from __future__ import annotations

from fastapi import FastAPI

from service.api import ops
from service.api.openapi import install_openapi
from service.api.problems import BodyLimitMiddleware, UnexpectedErrorMiddleware, install_problem_handlers
from service.api.routing import operation_id
from service.api.v1 import admin, context, documents, governance, memories, messages, sessions, tools, users
from service.lifespan import BuildBackends, make_lifespan, open_backends
from service.observability.logging import configure_logging
from service.observability.http import HttpMetricsMiddleware, RequestIdMiddleware, route_templates
from service.observability.metrics import Metrics
from service.settings import Settings
from service.ui import routes as ui

DESCRIPTION = (
    "Memory for LLM chatbots and agents: sessions with a short-term buffer, every message kept as an "
    "episodic record, long-term memories with hybrid recall, and prompt-ready context. "
    "Errors are RFC 9457 problem details (application/problem+json)."
)


def create_app(settings: Settings | None = None, build: BuildBackends = open_backends) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format.value)  # each uvicorn worker process too
    metrics = Metrics()
    app = FastAPI(
        title="memory-service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=make_lifespan(settings, metrics, build),
        generate_unique_id_function=operation_id,
        docs_url=None,  # /docs and /redoc are served from the package by install_openapi
        redoc_url=None,
    )
    for router in (
        sessions.router, messages.router, context.router, memories.router, documents.router, tools.router, users.router,
        governance.router, admin.router,
    ):
        app.include_router(router, prefix="/v1")
    ops.install(app)
    ui.install(app)  # /ui: the memory inspector, public, not in the schema
    metrics.declare_routes(route_templates(app.routes))  # every panel has series before traffic
    install_openapi(app)
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_request_bytes,
        larger={"/import": settings.max_import_bytes, "/v1/documents": settings.max_document_request_bytes},
    )
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
