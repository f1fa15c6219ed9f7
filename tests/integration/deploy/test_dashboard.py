"""The committed dashboard is what scripts/gen_dashboard.py generates, its PromQL parses, and every
metric it reads is exported by anesbench (services/anesbench/metrics.py) or is a known SGLang metric."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import CHART, REPO, run_tool
from prometheus_client.metrics import MetricWrapperBase

DASHBOARD = CHART / "dashboards" / "anesbench.json"

# SGLang's own metrics (launch_server --enable-metrics) the dashboard may read.
SGLANG_METRICS = frozenset(
    {
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:gen_throughput",
        "sglang:token_usage",
        "sglang:cache_hit_rate",
        "sglang:prompt_tokens_total",
        "sglang:generation_tokens_total",
        "sglang:time_to_first_token_seconds_bucket",
        "sglang:inter_token_latency_seconds_bucket",
        "sglang:e2e_request_latency_seconds_bucket",
    }
)
PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$namespace": ".*",
    "$model": ".*",
    "$language": ".*",
}


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_dashboard", REPO / "scripts" / "gen_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported_metric_names() -> set[str]:
    """Series names anesbench exports: counters get _total, histograms _bucket/_sum/_count."""
    from anesbench import metrics

    names: set[str] = set()
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        family = collector.describe()[0]
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, matchers, ranges and label lists removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])[0-9][A-Za-z0-9_.]*", " ", text)  # numbers and durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def _expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert inner, f"variable {variable['name']}: unexpected query {query}"
            yield f"variable {variable['name']}", inner.group(1)


def _concrete(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_is_up_to_date() -> None:
    assert DASHBOARD.read_text() == _generator().render(), "run: .venv/bin/python scripts/gen_dashboard.py"


def test_generator_check_mode(tmp_path: Path) -> None:
    generator = _generator()
    target = tmp_path / "board.json"
    assert generator.main(["--output", str(target)]) == 0
    assert generator.main(["--output", str(target), "--check"]) == 0
    target.write_text("{}\n")
    assert generator.main(["--output", str(target), "--check"]) == 1


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "anesbench-overview" and dashboard["title"] == "AnesBench"
    titles = {panel["title"] for panel in dashboard["panels"]}
    for title in (
        "Run progress",
        "Accuracy by level",
        "Overall accuracy by language",
        "Request latency",
        "In flight and queued (harness)",
        "Running and queued (SGLang)",
        "Retries by cause",
        "Tokens per second",
        "Grading latency",
        "Replies by extraction method",
        "Model states",
        "Waiting for Ready",
        "KV cache usage (SGLang)",
        "Prefix cache hit rate (SGLang)",
    ):
        assert title in titles
    timeline = next(p for p in dashboard["panels"] if p["title"] == "Model states")
    assert timeline["type"] == "state-timeline"
    names = {option["text"] for mapping in timeline["fieldConfig"]["defaults"]["mappings"]
             for option in mapping["options"].values()}
    assert names == {"stopped", "queued", "starting", "ready", "stopping"}
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in ("sglang:token_usage", "sglang:cache_hit_rate", "anesbench_model_state",
                   "anesbench_model_ready_wait_seconds_bucket"):
        assert metric in exprs, metric
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    latency = next(p for p in dashboard["panels"] if p["title"] == "Request latency")
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "histogram_quantile(0.99",
    ]


def test_accuracy_over_time_per_model_has_its_band_and_the_deltas(dashboard: dict[str, Any]) -> None:
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    band = panels["Accuracy over time: ${model}"]
    assert band["repeat"] == "model"
    assert [metric_names(t["expr"]) for t in band["targets"]] == [
        {"anesbench_run_accuracy"}, {"anesbench_run_accuracy_ci_high"}, {"anesbench_run_accuracy_ci_low"}]
    legends = {t["legendFormat"].replace("{{language}}", language) for t in band["targets"] for language in ("en", "zh")}
    fills = {o["matcher"]["options"]: p["value"] for o in band["fieldConfig"]["overrides"] for p in o["properties"]
             if p["id"] == "custom.fillBelowTo"}
    assert fills == {"en 95% high": "en 95% low", "zh 95% high": "zh 95% low"} and set(fills.values()) <= legends
    assert metric_names(panels["Accuracy delta against the run before"]["targets"][0]["expr"]) == {
        "anesbench_accuracy_delta"}
    assert metric_names(panels["Delta p-value (exact McNemar)"]["targets"][0]["expr"]) == {
        "anesbench_accuracy_delta_pvalue"}


def test_metric_names_are_known(dashboard: dict[str, Any]) -> None:
    known = exported_metric_names() | SGLANG_METRICS
    used: set[str] = set()
    for where, expr in _expressions(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        unknown = names - known
        assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr}"
        used |= names
    # the dashboard covers the inference server's queue too, not only ours
    assert {"sglang:num_running_reqs", "sglang:num_queue_reqs"} <= used


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.9, sum by (model, le) (rate(anesbench_inference_request_duration_seconds_bucket"
        '{namespace=~".*", outcome!="ok"}[5m]))) / on (model) group_left sglang:num_queue_reqs offset 5m'
    )
    assert metric_names(expr) == {
        "anesbench_inference_request_duration_seconds_bucket",
        "sglang:num_queue_reqs",
    }


def test_promql_parses(dashboard: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    """promtool parses each expression (as a recording rule) with the Grafana variables filled in."""
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": _concrete(expr)}
        for i, (_, expr) in enumerate(_expressions(dashboard))
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_use_known_metrics(render) -> None:
    known = exported_metric_names() | {"up"}
    groups = render("full-values.yaml", True).one("PrometheusRule")["spec"]["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    for group in groups:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known - recorded
            assert not unknown, (
                f"{rule.get('alert') or rule.get('record')}: unknown metric(s) {sorted(unknown)}"
            )
