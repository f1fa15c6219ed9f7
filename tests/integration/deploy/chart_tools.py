"""Helpers of the deployment tests: locate the real tools, render the chart, validate against CRDs.

Tools are looked up in the repo's .tools/bin (scripts/install-tools.sh puts them there), then on PATH.
A missing tool skips the test that needs it with the command that installs it (under CI=true it fails).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.missing import missing

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "anesbench"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SCHEMAS = REPO / "tests" / "data" / "crds"
TOOLS_BIN = REPO / ".tools" / "bin"

RELEASE = "anesbench"
NAMESPACE = "anesbench"
KUBE_VERSION = "1.33.0"
CRD_API_VERSIONS = ("monitoring.coreos.com/v1", "serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1")
CRD_KINDS = frozenset(
    {"ServingRuntime", "InferenceService", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
)


def find_tool(name: str) -> str:
    """Path of a tool in .tools/bin, the venv or on PATH; a missing one skips the test, or fails it under CI."""
    for candidate in (TOOLS_BIN / name, REPO / ".venv" / "bin" / name):
        if candidate.is_file() and candidate.stat().st_mode & 0o111:
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    missing(f"{name} not found in {TOOLS_BIN} or on PATH: run `bash scripts/install-tools.sh` (or `make setup`)")


def run_tool(
    args: list[str], *, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Render:
    """One `helm template` of the chart."""

    name: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.documents:
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
        return dict(sorted(counts.items()))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        matches = [d for d in self.of_kind(kind) if name is None or d["metadata"]["name"] == name]
        assert len(matches) == 1, f"{self.name}: expected one {kind} {name or ''}, found {len(matches)}"
        return matches[0]


def helm_template(
    values_files: tuple[Path, ...] = (),
    *,
    api_versions: tuple[str, ...] = (),
    set_values: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    args = [
        find_tool("helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    for path in values_files:
        args += ["--values", str(path)]
    for api in api_versions:
        args += ["--api-versions", api]
    for item in set_values:
        args += ["--set", item]
    return run_tool(args)


@cache
def render_values(values_name: str, with_crds: bool) -> Render:
    """`helm template` of charts/anesbench/ci/<values_name> (or "defaults"), with or without the CRD APIs."""
    files = () if values_name == "defaults" else (CHART / "ci" / values_name,)
    result = helm_template(files, api_versions=CRD_API_VERSIONS if with_crds else ())
    if result.returncode != 0:
        pytest.fail(f"helm template {values_name} failed:\n{result.stderr}")
    docs = [doc for doc in yaml.load_all(result.stdout, Loader=LOADER) if doc]
    return Render(f"{values_name} ({'with' if with_crds else 'without'} CRD APIs)", docs)


def _python_pattern(pattern: str) -> str:
    """Go's RE2 accepts inline flags anywhere ("^(?i)(abort|warn)?$"); Python wants them first."""
    flags = "".join(re.findall(r"\(\?([imsU]+)\)", pattern))
    if not flags:
        return pattern
    return f"(?{''.join(sorted(set(flags)))})" + re.sub(r"\(\?[imsU]+\)", "", pattern)


def _strict(schema: Any) -> Any:
    """Reject unknown fields the way the API server prunes them: additionalProperties: false wherever
    a schema lists `properties` and neither preserves unknown fields nor says otherwise."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if isinstance(out.get("pattern"), str):
            out["pattern"] = _python_pattern(out["pattern"])
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """{(apiVersion, kind): validator of the strict openAPIV3Schema} from the CRDs vendored in tests/data/crds."""
    if not SCHEMAS.is_dir():
        pytest.fail(f"CRD schemas not found at {SCHEMAS}")
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(SCHEMAS.glob("*/*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
                    cls.check_schema(schema)
                    validators[(f"{group}/{version['name']}", kind)] = cls(schema)
    return validators
