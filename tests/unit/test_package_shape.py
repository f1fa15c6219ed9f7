"""The product's size and shape stay what a newcomer can read: a line ceiling for the hand-written package,
a dispatcher in a few modules, and runtime dependencies without the test tools' libraries."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT

PACKAGE = ROOT / "services" / "anesbench"
GENERATED = PACKAGE / "v1"
LINE_BUDGET = 11_400  # the budget; a ceiling that only comes down
DISPATCHER_MODULES = 6  # besides __init__


def _hand_written() -> dict[str, int]:
    return {str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
            for path in PACKAGE.rglob("*.py") if GENERATED not in path.parents}


def test_the_package_stays_within_its_line_budget() -> None:
    lines = _hand_written()
    biggest = sorted(lines.items(), key=lambda item: -item[1])[:5]
    assert sum(lines.values()) <= LINE_BUDGET, f"{sum(lines.values())} lines > {LINE_BUDGET}; biggest: {biggest}"


def test_the_line_count_sees_the_package() -> None:
    lines = _hand_written()
    assert "engine/runner.py" in lines and lines["engine/runner.py"] > 100
    assert not [name for name in lines if name.startswith("v1/")]


def test_the_dispatcher_is_a_few_modules() -> None:
    modules = sorted(path.name for path in (PACKAGE / "dispatcher").glob("*.py") if path.name != "__init__.py")
    assert 2 <= len(modules) <= DISPATCHER_MODULES, modules


def test_runtime_dependencies_leave_out_the_test_tools_libraries() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {dep.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
             for dep in project["dependencies"]}
    assert "click" in names and "grpcio" in names
    assert not {"aiohttp", "xllamacpp", "httpx", "pytest"} & names, names
