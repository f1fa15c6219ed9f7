"""The PrometheusRule's rules load in Prometheus (promtool check rules) and each alert fires, and only
fires, when it should (promtool test rules with promtool/alerts-test.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from chart_tools import CHART, CRD_API_VERSIONS, helm_template, run_tool

HERE = Path(__file__).resolve().parent
ALERTS = {
    "AnesbenchRunStalled",
    "AnesbenchInferenceErrorRate",
    "AnesbenchEndpointDown",
    "AnesbenchAccuracyDropped",
    "AnesbenchAccuracyRegression",
}
SWITCHES = {
    "runStalled": "AnesbenchRunStalled",
    "inferenceErrorRate": "AnesbenchInferenceErrorRate",
    "endpointDown": "AnesbenchEndpointDown",
    "accuracyDropped": "AnesbenchAccuracyDropped",
    "accuracyRegression": "AnesbenchAccuracyRegression",
}


@pytest.fixture(scope="module")
def rules_dir(render, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rules.yaml (the rendered PrometheusRule's spec) next to a copy of the unit tests."""
    rule = render("full-values.yaml", True).one("PrometheusRule")
    directory = tmp_path_factory.mktemp("rules")
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    shutil.copy(HERE / "promtool" / "alerts-test.yaml", directory / "alerts-test.yaml")
    return directory


def test_rule_file_is_valid(promtool: str, rules_dir: Path) -> None:
    result = run_tool([promtool, "check", "rules", "--lint-fatal", "rules.yaml"], cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_and_stay_quiet_as_specified(promtool: str, rules_dir: Path) -> None:
    result = run_tool([promtool, "test", "rules", "alerts-test.yaml"], cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_cover_every_alert() -> None:
    spec = yaml.safe_load((HERE / "promtool" / "alerts-test.yaml").read_text())
    fired = {
        case["alertname"] for test in spec["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in spec["tests"]
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    assert fired == ALERTS and quiet == ALERTS


def test_every_alert_is_rendered(render) -> None:
    groups = render("full-values.yaml", True).one("PrometheusRule")["spec"]["groups"]
    assert {rule.get("alert") for group in groups for rule in group["rules"]} - {None} == ALERTS


def _alert_names(*overrides: str) -> set[str] | None:
    result = helm_template(
        (CHART / "ci" / "minimal-values.yaml",), api_versions=CRD_API_VERSIONS, set_values=overrides
    )
    assert result.returncode == 0, result.stderr
    rules = [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "PrometheusRule"]
    if not rules:
        return None
    return {
        rule["alert"] for group in rules[0]["spec"]["groups"] for rule in group["rules"] if "alert" in rule
    }


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_alert_can_be_switched_off(switch: str) -> None:
    assert _alert_names(f"monitoring.prometheusRule.alerts.{switch}.enabled=false") == ALERTS - {
        SWITCHES[switch]
    }


def test_no_rule_object_without_alerts() -> None:
    assert _alert_names(*(f"monitoring.prometheusRule.alerts.{s}.enabled=false" for s in SWITCHES)) is None
