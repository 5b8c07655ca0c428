"""Metrics, the HTTP middlewares and the JSON log format, on a fresh registry and a tiny app."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from service.observability.http import HttpMetricsMiddleware, RequestIdMiddleware, current_request_id
from service.observability.logging import configure_logging
from service.observability.metrics import Metrics, prepare_multiprocess_dir, render_latest

REPO = Path(__file__).resolve().parents[2]

# The contract with the dashboard, the lead's code and the docs: names, types and label sets.
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "memory_http_requests_total": ("counter", ("method", "route", "status_class")),
    "memory_http_request_duration_seconds": ("histogram", ("method", "route")),
    "memory_http_requests_in_flight": ("gauge", ()),
    "memory_embedding_batch_size": ("histogram", ()),
    "memory_embedding_seconds": ("histogram", ()),
    "memory_vector_search_seconds": ("histogram", ("mode",)),
    "memory_sql_query_seconds": ("histogram", ()),
    "memory_search_seconds": ("histogram", ("mode",)),
    "memory_context_seconds": ("histogram", ()),
    "memory_jobs_pending": ("gauge", ()),
    "memory_jobs_oldest_pending_age_seconds": ("gauge", ()),
    "memory_indexing_lag_seconds": ("gauge", ()),
    "memory_jobs_completed_total": ("counter", ("kind",)),
    "memory_job_failures_total": ("counter", ("kind",)),
    "memory_job_retries_total": ("counter", ("kind",)),
    "memory_summaries_total": ("counter", ()),
    "memory_extractions_total": ("counter", ()),
    "memory_llm_calls_total": ("counter", ("outcome",)),
    "memory_llm_tokens_total": ("counter", ("direction",)),
    "memory_llm_errors_total": ("counter", ()),
    "memory_retention_purged_total": ("counter", ("kind",)),
    "memory_sessions": ("gauge", ()),
    "memory_messages": ("gauge", ()),
    "memory_memories": ("gauge", ("type",)),
}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


class TestMetrics:
    def test_names_types_and_labels(self, metrics: Metrics) -> None:
        assert metrics.names() == {name: kind for name, (kind, _) in EXPECTED.items()}
        assert metrics.label_names() == {name: labels for name, (_, labels) in EXPECTED.items()}

    def test_every_metric_is_exported(self, metrics: Metrics) -> None:
        exported = {family.name for family in metrics.registry.collect()}
        for name, (kind, _) in EXPECTED.items():
            family = name.removesuffix("_total") if kind == "counter" else name
            assert family in exported, name

    def test_several_instances_in_separate_registries(self) -> None:
        first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
        first.job_completed("embed")
        assert value(first, "memory_jobs_completed_total", kind="embed") == 1
        assert value(second, "memory_jobs_completed_total", kind="embed") == 0

    def test_same_registry_twice_is_refused(self, metrics: Metrics) -> None:
        with pytest.raises(ValueError, match="Duplicated"):
            Metrics(metrics.registry)

    def test_request_status_class(self, metrics: Metrics) -> None:
        metrics.observe_request("GET", "/v1/x", 204, 0.01)
        metrics.observe_request("GET", "/v1/x", 503, 0.02)
        assert value(metrics, "memory_http_requests_total", method="GET", route="/v1/x", status_class="2xx") == 1
        assert value(metrics, "memory_http_requests_total", method="GET", route="/v1/x", status_class="5xx") == 1
        assert value(metrics, "memory_http_request_duration_seconds_count", method="GET", route="/v1/x") == 2

    def test_embedding_search_and_sql(self, metrics: Metrics) -> None:
        metrics.observe_embedding_batch(64, 0.12)
        metrics.observe_embedding_batch(1024, 0.5)
        metrics.observe_vector_search("dense", 0.003)
        metrics.observe_vector_search("sparse", 0.004)
        metrics.observe_search("hybrid", 0.02)
        metrics.observe_sql_query(0.001)
        assert value(metrics, "memory_embedding_batch_size_sum") == 1088
        assert value(metrics, "memory_embedding_batch_size_bucket", le="64.0") == 1
        assert value(metrics, "memory_embedding_batch_size_bucket", le="1024.0") == 2
        assert value(metrics, "memory_embedding_seconds_count") == 2
        assert value(metrics, "memory_vector_search_seconds_count", mode="sparse") == 1
        assert value(metrics, "memory_search_seconds_count", mode="hybrid") == 1
        assert value(metrics, "memory_sql_query_seconds_count") == 1

    def test_jobs_and_queue(self, metrics: Metrics) -> None:
        metrics.job_completed("embed")
        metrics.job_failed("summarize")
        metrics.job_retried("summarize")
        metrics.set_queue(7, 42.5, 3.25)
        assert value(metrics, "memory_jobs_completed_total", kind="embed") == 1
        assert value(metrics, "memory_job_failures_total", kind="summarize") == 1
        assert value(metrics, "memory_job_retries_total", kind="summarize") == 1
        assert value(metrics, "memory_jobs_pending") == 7
        assert value(metrics, "memory_jobs_oldest_pending_age_seconds") == 42.5
        assert value(metrics, "memory_indexing_lag_seconds") == 3.25
        metrics.set_queue(0, None)
        assert value(metrics, "memory_jobs_oldest_pending_age_seconds") == 0
        assert value(metrics, "memory_indexing_lag_seconds") == 0

    def test_llm(self, metrics: Metrics) -> None:
        metrics.observe_llm_call("ok", input_tokens=100, output_tokens=20)
        metrics.observe_llm_call("timeout")
        metrics.summary_written()
        metrics.extraction_completed()
        assert value(metrics, "memory_llm_calls_total", outcome="ok") == 1
        assert value(metrics, "memory_llm_calls_total", outcome="timeout") == 1
        assert value(metrics, "memory_llm_tokens_total", direction="input") == 100
        assert value(metrics, "memory_llm_tokens_total", direction="output") == 20
        assert value(metrics, "memory_llm_errors_total") == 1
        assert value(metrics, "memory_summaries_total") == 1
        assert value(metrics, "memory_extractions_total") == 1

    def test_state_counts_drop_vanished_types_to_zero(self, metrics: Metrics) -> None:
        metrics.set_state_counts(3, 40, {"fact": 5, "preference": 2})
        assert value(metrics, "memory_sessions") == 3
        assert value(metrics, "memory_messages") == 40
        assert value(metrics, "memory_memories", type="preference") == 2
        metrics.set_state_counts(3, 41, {"fact": 6})
        assert value(metrics, "memory_memories", type="fact") == 6
        assert value(metrics, "memory_memories", type="preference") == 0

    def test_render_latest(self, metrics: Metrics) -> None:
        metrics.job_completed("embed")
        body, content_type = render_latest(metrics.registry)
        assert content_type.startswith("text/plain")
        assert b'memory_jobs_completed_total{kind="embed"} 1.0' in body
        body, content_type = render_latest(metrics.registry, "application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")


class TestSqlInstrumentation:
    def test_sync_engine_statements_are_timed_once(self, metrics: Metrics) -> None:
        engine = create_engine("sqlite://")
        metrics.instrument_engine(engine)
        metrics.instrument_engine(engine)  # idempotent
        with engine.connect() as conn:
            conn.execute(text("select 1"))
            conn.execute(text("select 2"))
        assert value(metrics, "memory_sql_query_seconds_count") == 2

    def test_failed_statement_is_timed_and_does_not_leak(self, metrics: Metrics) -> None:
        engine = create_engine("sqlite://")
        metrics.instrument_engine(engine)
        with engine.connect() as conn:
            with pytest.raises(OperationalError):
                conn.execute(text("select * from no_such_table"))
            conn.execute(text("select 1"))
            assert conn.connection.info.get("memory_service.query_start") == []
        assert value(metrics, "memory_sql_query_seconds_count") == 2

    async def test_async_engine(self, metrics: Metrics) -> None:
        engine = create_async_engine("sqlite+aiosqlite://")
        metrics.instrument_engine(engine)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))
        finally:
            await engine.dispose()
        assert value(metrics, "memory_sql_query_seconds_count") == 1


MULTIPROCESS_CHILD = textwrap.dedent(
    """
    import os, sys
    from service.observability.metrics import Metrics
    m = Metrics()
    m.job_completed("embed")
    m.http_in_flight.inc()
    m.set_queue(int(sys.argv[1]), 1.0)
    print(os.getpid())
    """
)

MULTIPROCESS_RENDER = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from service.observability.metrics import mark_process_dead, render_latest
    if len(sys.argv) > 1:
        mark_process_dead(int(sys.argv[1]))
    sys.stdout.write(render_latest(CollectorRegistry())[0].decode())
    """
)


def test_multiprocess_mode_merges_processes(tmp_path: Path) -> None:
    """Two processes write to one folder; a third renders their sum; a dead one's live gauges go."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}

    def run(code: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first_pid = run(MULTIPROCESS_CHILD, "3").strip()
    run(MULTIPROCESS_CHILD, "5")
    merged = run(MULTIPROCESS_RENDER)
    assert re.search(r'^memory_jobs_completed_total\{kind="embed"\} 2\.0$', merged, re.M), merged
    assert re.search(r"^memory_http_requests_in_flight 2\.0$", merged, re.M), merged
    assert re.search(r"^memory_jobs_pending 5\.0$", merged, re.M), merged  # the latest reading

    after = run(MULTIPROCESS_RENDER, first_pid)
    assert re.search(r"^memory_http_requests_in_flight 1\.0$", after, re.M), after
    assert re.search(r'^memory_jobs_completed_total\{kind="embed"\} 2\.0$', after, re.M), after  # counters stay


def test_folder_exported_too_late_is_ignored(metrics: Metrics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus_client chose in-memory values at import; rendering must not switch to empty files."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics.job_completed("embed")
    assert b'memory_jobs_completed_total{kind="embed"} 1.0' in render_latest(metrics.registry)[0]


def test_logging_does_not_import_prometheus_client() -> None:
    code = "import sys, service.observability.logging; assert 'prometheus_client' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


# --- the middlewares, through a tiny app ---------------------------------------------------------


def tiny_app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    sessions = APIRouter(prefix="/sessions")
    log = logging.getLogger("service.test")

    @sessions.get("/{session_id}")
    async def get_session(session_id: str) -> dict[str, str | None]:
        log.info("session read", extra={"session_id": session_id, "content": "my secret diary"})
        return {"session_id": session_id, "request_id": current_request_id()}

    @sessions.get("/{session_id}/missing")
    async def missing(session_id: str) -> None:
        raise HTTPException(404, "no such session")

    @sessions.get("/{session_id}/boom")
    async def boom(session_id: str) -> None:
        raise RuntimeError("boom")

    v1 = APIRouter(prefix="/v1")
    v1.include_router(sessions)
    app.include_router(v1)

    @app.get("/metrics")
    async def metrics_endpoint() -> dict[str, str]:
        return {}

    app.mount("/sub", Starlette(routes=[Route("/items/{item_id}", lambda request: PlainTextResponse("ok"))]))
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
async def client(metrics: Metrics) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=tiny_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def requests_total(metrics: Metrics, route: str, status_class: str, method: str = "GET") -> float:
    return value(metrics, "memory_http_requests_total", method=method, route=route, status_class=status_class)


class TestHttpMetricsMiddleware:
    async def test_route_template_not_raw_path(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        for session_id in ("a", "b", "c"):
            assert (await client.get(f"/v1/sessions/{session_id}")).status_code == 200
        assert requests_total(metrics, "/v1/sessions/{session_id}", "2xx") == 3
        body = render_latest(metrics.registry)[0].decode()
        assert "/v1/sessions/a" not in body
        count = "memory_http_request_duration_seconds_count"
        assert value(metrics, count, method="GET", route="/v1/sessions/{session_id}") == 3

    async def test_unknown_paths_are_unmatched(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        for path in ("/nope", "/wp-admin/x.php", "/v1/unknown/1"):
            assert (await client.get(path)).status_code == 404
        assert requests_total(metrics, "unmatched", "4xx") == 3

    async def test_handler_404_keeps_its_template(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.get("/v1/sessions/x/missing")).status_code == 404
        assert requests_total(metrics, "/v1/sessions/{session_id}/missing", "4xx") == 1

    async def test_method_not_allowed_is_labelled_by_route(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.delete("/v1/sessions/x")).status_code == 405
        assert requests_total(metrics, "/v1/sessions/{session_id}", "4xx", method="DELETE") == 1

    async def test_unhandled_error_counts_as_5xx(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.get("/v1/sessions/x/boom")).status_code == 500
        assert requests_total(metrics, "/v1/sessions/{session_id}/boom", "5xx") == 1
        assert value(metrics, "memory_http_requests_in_flight") == 0

    async def test_mounted_app_route_keeps_the_mount_prefix(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.get("/sub/items/9")).status_code == 200
        assert requests_total(metrics, "/sub/items/{item_id}", "2xx") == 1

    async def test_unknown_methods_share_one_label(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.request("BREW", "/v1/sessions/x")).status_code == 405
        assert requests_total(metrics, "/v1/sessions/{session_id}", "4xx", method="other") == 1

    async def test_metrics_endpoint_is_skipped(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        assert (await client.get("/metrics")).status_code == 200
        assert requests_total(metrics, "/metrics", "2xx") == 0
        assert "/metrics" not in render_latest(metrics.registry)[0].decode()


class TestRequestId:
    async def test_generated_and_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/sessions/s1")
        request_id = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        assert response.json()["request_id"] == request_id  # the contextvar inside the handler

    async def test_sane_incoming_id_is_kept(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/sessions/s1", headers={"X-Request-ID": "trace-abc.123:7"})
        assert response.headers["x-request-id"] == "trace-abc.123:7"
        assert response.json()["request_id"] == "trace-abc.123:7"

    @pytest.mark.parametrize("bad", [b"x" * 129, b"has space", "new\u00e9".encode(), b"a,b", b"<script>", b""])
    async def test_insane_incoming_id_is_replaced(self, client: httpx.AsyncClient, bad: bytes) -> None:
        response = await client.get("/v1/sessions/s1", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    async def test_every_request_gets_its_own_id(self, client: httpx.AsyncClient) -> None:
        ids = {(await client.get("/v1/sessions/s1")).headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3
        assert current_request_id() is None  # nothing leaks into the caller's context

    async def test_error_responses_carry_the_id(self, client: httpx.AsyncClient) -> None:
        assert re.fullmatch(r"[0-9a-f]{32}", (await client.get("/nope")).headers["x-request-id"])


# --- logs ------------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class TestJsonLogs:
    async def test_log_line_carries_request_id(self, client: httpx.AsyncClient, log_stream: io.StringIO) -> None:
        response = await client.get("/v1/sessions/s42?q=find+my+secret")
        request_id = response.headers["x-request-id"]
        lines = json_lines(log_stream)
        app_line = next(line for line in lines if line["logger"] == "service.test")
        assert app_line["request_id"] == request_id
        assert app_line["level"] == "INFO" and app_line["message"] == "session read"
        assert app_line["session_id"] == "s42"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(app_line["ts"]))

        access = next(line for line in lines if line["logger"] == "service.access")
        assert access["request_id"] == request_id
        assert access["route"] == "/v1/sessions/{session_id}" and access["status"] == 200
        assert "secret" not in log_stream.getvalue()  # neither the query string nor the content extra

    def test_contents_and_secrets_are_redacted(self, log_stream: io.StringIO) -> None:
        logging.getLogger("service.test").info(
            "stored", extra={"content": "I love cats", "api_key": "sk-123", "memory_id": "m1"}
        )
        (line,) = json_lines(log_stream)
        assert line["content"] == "[redacted]" and line["api_key"] == "[redacted]"
        assert line["memory_id"] == "m1"
        assert line["request_id"] is None  # outside a request

    def test_uvicorn_loggers_go_through_the_handler(self, log_stream: io.StringIO) -> None:
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/memories/search?q=my+secret", "1.1", 200
        )
        lines = json_lines(log_stream)
        assert [line["logger"] for line in lines] == ["uvicorn.error", "uvicorn.access"]
        assert lines[1]["message"] == '127.0.0.1:5000 - "GET /v1/memories/search HTTP/1.1" 200'

    def test_exceptions_are_one_line(self, log_stream: io.StringIO) -> None:
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("service.test").exception("failed")
        (line,) = json_lines(log_stream)
        assert "ValueError: bad" in str(line["exc"])

    def test_text_format_and_reconfiguration(self, log_stream: io.StringIO) -> None:
        stream = io.StringIO()
        configure_logging("WARNING", "text", stream=stream)
        root = logging.getLogger()
        assert sum(1 for h in root.handlers if h.get_name() == "memory_service") == 1
        logging.getLogger("service.test").info("hidden")
        logging.getLogger("service.test").warning("shown")
        assert stream.getvalue().count("\n") == 1
        assert "WARNING" in stream.getvalue() and "[None] shown" in stream.getvalue()
        with pytest.raises(ValueError):
            configure_logging("INFO", "xml")


def test_known_label_values_exist_from_the_start(metrics: Metrics) -> None:
    body = render_latest(metrics.registry)[0].decode()
    for series in (
        'memory_vector_search_seconds_count{mode="dense"} 0.0',
        'memory_vector_search_seconds_count{mode="sparse"} 0.0',
        'memory_search_seconds_count{mode="keyword"} 0.0',
        'memory_llm_tokens_total{direction="output"} 0.0',
        "memory_jobs_pending 0.0",
    ):
        assert series in body, series


def test_prepare_multiprocess_dir_removes_stale_files(tmp_path: Path) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("x")
    assert prepare_multiprocess_dir(folder) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert prepare_multiprocess_dir(tmp_path / "new" / "dir").is_dir()
