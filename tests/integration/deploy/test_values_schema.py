"""values.schema.json and the chart's own checks refuse typos and wrong types: `helm template` fails
with a message naming the offending value instead of rendering something else."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chart_tools import CHART, CRD_API_VERSIONS, helm_template

MODEL = {"name": "qwen3-8b", "storageUri": "hf://Qwen/Qwen3-8B"}
SCHEDULE = {"name": "nightly", "model": "qwen3-8b", "cron": "0 2 * * *"}

BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown top-level key": ({"dispatchr": {"port": 1}}, "dispatchr"),
    "typo in a nested key": ({"monitoring": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
    "typo in dispatcher": ({"dispatcher": {"replicas": 2}}, "replicas"),
    "wrong type": ({"grader": {"replicas": "two"}}, "replicas"),
    "string for a boolean": ({"networkPolicy": {"enabled": "yes"}}, "enabled"),
    "enum": ({"sglang": {"deploymentMode": "Knative"}}, "deploymentMode"),
    "pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "model name with capitals": ({"models": [{**MODEL, "name": "Qwen3_8B"}]}, "name"),
    "model without storageUri": ({"models": [{"name": "qwen3-8b"}]}, "storageUri"),
    "unknown model key": ({"models": [{**MODEL, "gpu": 1}]}, "gpu"),
    "bad storage scheme": ({"models": [{**MODEL, "storageUri": "Qwen/Qwen3-8B"}]}, "storageUri"),
    "bad cron": ({"models": [MODEL], "schedules": [{**SCHEDULE, "cron": "every night"}]}, "cron"),
    "six-field cron": ({"models": [MODEL], "schedules": [{**SCHEDULE, "cron": "0 0 2 * * *"}]}, "cron"),
    "unknown language": ({"models": [MODEL], "schedules": [{**SCHEDULE, "languages": ["fr"]}]}, "languages"),
    "schedule typo": ({"models": [MODEL], "schedules": [{**SCHEDULE, "concurency": 4}]}, "concurency"),
    "zero concurrency": ({"models": [MODEL], "schedules": [{**SCHEDULE, "concurrency": 0}]}, "concurrency"),
    "threshold above 1": (
        {"monitoring": {"prometheusRule": {"alerts": {"accuracyDropped": {"threshold": 5}}}}},
        "threshold",
    ),
    "bad duration": (
        {"monitoring": {"prometheusRule": {"alerts": {"endpointDown": {"for": "5 minutes"}}}}},
        "for",
    ),
    "bad endpoint url": ({"externalEndpoints": [{"name": "hosted", "url": "api.example.com"}]}, "url"),
    "dataset volume ReadWriteOncePod": (
        {"datasets": {"persistence": {"accessModes": ["ReadWriteOncePod"]}}},
        "accessModes",
    ),
    # Checks the schema cannot express, done by the templates:
    "schedule of an unknown model": (
        {"models": [MODEL], "schedules": [{**SCHEDULE, "model": "llama"}]},
        "llama",
    ),
    "standin schedule without standin": ({"schedules": [{**SCHEDULE, "model": "standin"}]}, "standin"),
    "duplicate model names": ({"models": [MODEL, MODEL]}, "used twice"),
    "endpoint named like a model": (
        {"models": [MODEL], "externalEndpoints": [{"name": "qwen3-8b", "url": "https://x.example/v1"}]},
        "already used",
    ),
    "hpa min above max": (
        {"grader": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
        "minReplicas",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_refused(tmp_values, case: str) -> None:
    values, needle = BAD_VALUES[case]
    # As on a cluster with KServe, so that the checks below the "KServe is missing" refusal are reached.
    result = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
    assert result.returncode != 0, f"{case}: rendered although it should not:\n{result.stdout[:400]}"
    assert needle in result.stderr, result.stderr


def test_good_values_render(tmp_values) -> None:
    values = {"models": [MODEL], "schedules": [{**SCHEDULE, "languages": ["en", "zh"], "cron": "@daily"}]}
    result = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
    assert result.returncode == 0, result.stderr


def _objects_without_closed_properties(schema: Any, path: str = "$") -> list[str]:
    found = []
    if isinstance(schema, dict):
        if "properties" in schema and schema.get("additionalProperties") is not False:
            found.append(path)
        for key, value in schema.items():
            found += _objects_without_closed_properties(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += _objects_without_closed_properties(value, f"{path}[{i}]")
    return found


def test_schema_closes_every_object_it_defines() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    # envList items name only `name` to require it; the rest of an EnvVar is Kubernetes' to check
    open_objects = [p for p in _objects_without_closed_properties(schema) if p != "$.$defs.envList.items"]
    assert not open_objects


def _keys_and_comments(text: str) -> dict[str, bool]:
    """{dotted key: whether a comment line sits right above it} for every mapping key in values.yaml,
    skipping free-form maps (labels, resources, selectors) and list items."""
    free_maps = {
        "labels",
        "annotations",
        "podAnnotations",
        "podLabels",
        "nodeSelector",
        "commonLabels",
        "requests",
        "limits",
        "matchLabels",
        "affinity",
        "resources",
        "namespaceSelector",
        "podSelector",
        "tolerations",
        "monitoringNamespaceSelector",
        "serviceAccount.annotations",
    }
    keys: dict[str, bool] = {}
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if not any(name in free_maps for _, name in stack):
                keys[".".join([name for _, name in stack] + [key])] = previous.lstrip().startswith("#")
            stack.append((indent, key))
        if line.strip():
            previous = line
    return keys


def test_every_values_key_is_commented_and_in_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())

    def lookup(path: str) -> None:
        node = schema
        for part in path.split("."):
            while "$ref" in node:
                node = schema["$defs"][node["$ref"].split("/")[-1]]
            assert part in node.get("properties", {}), f"values.schema.json has no {path}"
            node = node["properties"][part]

    keys = _keys_and_comments(text)
    assert len(keys) > 100
    for key, commented in keys.items():
        lookup(key)
        assert commented, f"values.yaml: {key} has no comment above it"
