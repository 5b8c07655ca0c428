"""The Grafana dashboard queries only metrics that ``Metrics`` defines, with labels they have."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.observability.metrics import Metrics
from tests.deploy.conftest import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "memory-service.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_IDENT = re.compile(r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows keep their panels inside


def dashboard_exprs(path: Path) -> list[tuple[str, str, str]]:
    """(panel title, expr, legendFormat) for every query target of every panel."""
    dashboard = json.loads(Path(path).read_text())
    return [
        (panel.get("title", ""), target["expr"], target.get("legendFormat", ""))
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def expr_metric_references(expr: str) -> set[str]:
    """Series names referenced by one PromQL expression, as written (``_bucket`` etc. kept)."""
    without_strings = _STRING.sub('""', expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_ranges)
    without_grouping = _GROUPING.sub("", without_matchers)
    return {m for m in _IDENT.findall(without_grouping) if m.startswith("memory_")}


def base_metric_name(series: str) -> str:
    """The metric a series belongs to: a histogram's ``_bucket``/``_sum``/``_count`` stripped."""
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def dashboard_metric_names(path: Path) -> set[str]:
    """Metric names (histogram suffixes stripped) used by every panel expression of a dashboard."""
    return {base_metric_name(ref) for _, expr, _ in dashboard_exprs(path) for ref in expr_metric_references(expr)}


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return Metrics()


def test_extraction_strips_histogram_suffixes_but_not_counters() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(memory_http_request_duration_seconds_bucket{route!="x"}[5m])))'
        " / sum(rate(memory_http_requests_total[$__rate_interval]))"
    )
    assert expr_metric_references(expr) == {"memory_http_request_duration_seconds_bucket", "memory_http_requests_total"}
    assert {base_metric_name(r) for r in expr_metric_references(expr)} == {
        "memory_http_request_duration_seconds",
        "memory_http_requests_total",
    }


def test_dashboard_uses_many_metrics() -> None:
    names = dashboard_metric_names(DASHBOARD)
    assert len(names) >= 15, names


def test_every_dashboard_metric_is_defined(metrics: Metrics) -> None:
    undefined = dashboard_metric_names(DASHBOARD) - set(metrics.names())
    assert undefined == set()


def test_every_defined_metric_is_on_the_dashboard(metrics: Metrics) -> None:
    assert set(metrics.names()) - dashboard_metric_names(DASHBOARD) == set()


def test_histogram_suffixes_only_on_histograms(metrics: Metrics) -> None:
    types = metrics.names()
    for title, expr, _ in dashboard_exprs(DASHBOARD):
        for ref in expr_metric_references(expr):
            base = base_metric_name(ref)
            if ref != base:
                assert types[base] == "histogram", (title, ref)
            elif types.get(ref) == "histogram":
                pytest.fail(f"{title}: histogram {ref} used without _bucket/_sum/_count")


def test_counters_are_rated_not_plotted_raw(metrics: Metrics) -> None:
    types = metrics.names()
    for title, expr, _ in dashboard_exprs(DASHBOARD):
        for ref in expr_metric_references(expr):
            if types.get(ref) == "counter" or ref.endswith(HISTOGRAM_SUFFIXES):
                assert re.search(r"\b(rate|irate|increase)\s*\(", expr), (title, ref)


def test_grouping_and_legend_labels_exist(metrics: Metrics) -> None:
    labels = metrics.label_names()
    for title, expr, legend in dashboard_exprs(DASHBOARD):
        refs = expr_metric_references(expr)
        known = {"le"} | {label for ref in refs for label in labels[base_metric_name(ref)]}
        stripped = _STRING.sub('""', expr)
        for group in _GROUPING.findall(stripped):
            used = {g.strip() for g in group.split(",") if g.strip()}
            assert used <= known, (title, used - known)
        assert set(_LEGEND_LABEL.findall(legend)) <= known, (title, legend)


def test_panels_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in _panels(dashboard["panels"]):
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] in uids, panel["title"]


def test_required_panels_present() -> None:
    titles = " | ".join(title.lower() for title, _, _ in dashboard_exprs(DASHBOARD))
    for needle in ("traffic", "latency", "error", "embedding", "batch size", "vector search", "whole search", "sql",
                   "queue depth", "queue lag", "failures", "memories by type", "sessions", "llm"):
        assert needle in titles, needle
    quantiles = [expr for _, expr, _ in dashboard_exprs(DASHBOARD) if "memory_http_request_duration_seconds" in expr]
    assert {q for expr in quantiles for q in re.findall(r"histogram_quantile\((0\.\d+)", expr)} == {"0.5", "0.95", "0.99"}


def test_panel_ids_unique_and_grid_fits() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_provisioning_points_at_the_mounted_dashboards() -> None:
    providers = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    container_dir = mounts["./deploy/grafana/dashboards"]
    assert [p["options"]["path"] for p in providers["providers"]] == [container_dir]


ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


def test_alert_rules_use_defined_metrics_and_are_loaded(metrics: Metrics) -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    defined = set(metrics.names())
    assert {"MemoryIndexingBehind", "MemoryJobsFailing"} <= {r["alert"] for r in rules}
    for rule in rules:
        for series in expr_metric_references(rule["expr"]):
            assert base_metric_name(series) in defined, (rule["alert"], series)
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert "alerts.yml" in prometheus["rule_files"]
