"""Every metric the Grafana dashboard queries is exported by /metrics after a short workload."""

from __future__ import annotations

import httpx

from service.domain.upkeep import refresh_state_gauges
from tests.api.helpers import add_memories, drained, new_session, post_messages, search
from service.observability.metrics import Metrics
from tests.deploy.test_dashboard import (
    DASHBOARD,
    HISTOGRAM_SUFFIXES,
    base_metric_name,
    dashboard_exprs,
    dashboard_metric_names,
    expr_metric_references,
)


async def test_dashboard_metrics_exist_after_a_workload(client: httpx.AsyncClient, app) -> None:
    await new_session(client, id="s1")
    await post_messages(client, "s1", "I adopted a greyhound called Pixel.", "What a lovely name!")
    await add_memories(client, {"user_id": "u1", "content": "Prefers tea over coffee."})
    await drained(client)
    await search(client, "what pet do I have")
    await search(client, "tea", mode="keyword")
    await client.get("/v1/sessions/nope")  # a 4xx for the error panels
    state = app.state.memory
    await refresh_state_gauges(state.backends.db, state.metrics)

    exposition = (await client.get("/metrics")).text
    lines = exposition.splitlines()
    families = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    sampled = {line.split("{")[0].split(" ")[0] for line in lines if line and not line.startswith("#")}
    names = dashboard_metric_names(DASHBOARD)
    assert names, "the dashboard queries no metrics"
    missing = sorted(n for n in names if n not in families and n.removesuffix("_total") not in families)
    assert not missing, f"dashboard metrics absent from /metrics: {missing}"
    # The workload above must have produced real samples for the core panels.
    for name in (
        "memory_http_requests_total",
        "memory_http_request_duration_seconds_bucket",
        "memory_embedding_seconds_bucket",
        "memory_vector_search_seconds_bucket",
        "memory_search_seconds_bucket",
        "memory_sql_query_seconds_bucket",
        "memory_jobs_completed_total",
        "memory_memories",
    ):
        assert name in sampled, f"no samples for {name}"
    assert 'route="/v1/sessions/{session_id}"' in exposition  # labelled by template, not raw path


def sampled_series(exposition: str) -> set[str]:
    """Names of the series that have at least one sample (not just a # TYPE line)."""
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


async def test_every_dashboard_series_has_samples_before_any_traffic(client: httpx.AsyncClient) -> None:
    """A freshly started service: no panel may read "no data" (labelled series start at zero)."""
    exposition = (await client.get("/metrics")).text  # the scrape itself is not counted
    sampled = sampled_series(exposition)
    types = Metrics().names()
    expected: set[str] = set()
    for _, expr, _ in dashboard_exprs(DASHBOARD):
        for ref in expr_metric_references(expr):
            base = base_metric_name(ref)
            expected |= {base + s for s in HISTOGRAM_SUFFIXES} if types[base] == "histogram" else {ref}
    assert not sorted(expected - sampled), f"dashboard series without samples at start-up: {sorted(expected - sampled)}"
    # Labelled series exist for every value the panels group by: routes, status classes, kinds, types.
    assert 'memory_http_requests_total{method="POST",route="/v1/memories",status_class="5xx"} 0.0' in exposition
    assert 'memory_jobs_completed_total{kind="sync_memory"} 0.0' in exposition
    assert 'memory_memories{type="profile"} 0.0' in exposition
    assert 'route="/metrics"' not in exposition and 'method="HEAD"' not in exposition
