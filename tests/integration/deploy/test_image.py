"""docker/Dockerfile passes hadolint and keeps its promises (multi-stage, pinned base, non-root 10001,
`anesbench` entry point); the build context .dockerignore lets through is enough to build the wheel.
There is no Docker engine here, so the wheel step of the builder stage is replayed with pip."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from chart_tools import REPO, run_tool

DOCKERFILE = REPO / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_hadolint_clean(hadolint: str) -> None:
    result = run_tool([hadolint, "--failure-threshold", "info", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    # an inline ignore must say why on the line above it
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert i > 0 and lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], line


def test_multi_stage_non_root_entrypoint() -> None:
    steps = _instructions()
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final
    assert [rest for keyword, rest in final if keyword == "USER"] == ["10001:10001"]
    assert [rest for keyword, rest in final if keyword == "ENTRYPOINT"] == ['["anesbench"]']
    final_runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final_runs), (
        "no build tools in the final stage"
    )
    assert "useradd" in final_runs and "--uid 10001" in final_runs


def _dockerignore_allows(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent directory matches too."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, pattern in patterns:
        regex = fnmatch.translate(pattern.rstrip("/")).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pattern.startswith("**/"):
            regex = "(.*/)?" + fnmatch.translate(pattern[3:]).replace(".*", "[^/]*")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            included = negated
    return included


def _docker_context(destination: Path) -> list[str]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append((line.startswith("!"), line.lstrip("!")))
    sent = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv", ".tools", "node_modules")]
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), REPO)
            if _dockerignore_allows(relative, patterns):
                sent.append(relative)
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / relative, target)
    return sent


def test_dockerignore_sends_only_sources(tmp_path: Path) -> None:
    sent = _docker_context(tmp_path / "context")
    assert "pyproject.toml" in sent and "services/anesbench/cli/main.py" in sent
    for path in sent:
        assert path in ("pyproject.toml", "README.md") or path.startswith(("services/", "testkit/")), path
        assert "__pycache__" not in path and not path.endswith((".pyc", ".duckdb")), path


def test_builder_stage_builds_the_wheel(tmp_path: Path) -> None:
    """`pip wheel .` in the context Docker would receive, as the builder stage runs it."""
    context = tmp_path / "context"
    _docker_context(context)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"the image's wheel build would fail:\n{result.stdout}{result.stderr}"
    wheel = next((tmp_path / "wheels").glob("anesbench-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "anesbench = anesbench.cli.main:main" in entry_points
    sources = {
        str(p.relative_to(REPO / "services"))
        for p in (REPO / "services" / "anesbench").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(sources - names)
    assert not missing, f"modules missing from the wheel (a package without __init__.py?): {missing}"
    assert not [n for n in names if n.startswith("anesbench_testkit")], "test tools must stay out of the product wheel"


TESTKIT_DOCKERFILE = REPO / "docker" / "testkit.Dockerfile"


def test_testkit_image_is_the_product_image_plus_the_test_tools(hadolint: str) -> None:
    result = run_tool([hadolint, "--failure-threshold", "info", str(TESTKIT_DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    text = TESTKIT_DOCKERFILE.read_text()
    assert "FROM ${BASE}" in text and "COPY testkit " in text
    assert not [rest for keyword, rest in _instructions() if keyword == "COPY" and "testkit" in rest]
