"""Fixtures for the deployment tests: real helm, promtool and hadolint; each chart render happens once.

The helpers live in chart_tools.py, a uniquely named module that test files import (another
conftest.py elsewhere in the tree may own the name `conftest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from chart_tools import Render, find_tool, render_values
from chart_tools import crd_validators as _crd_validators


@pytest.fixture(scope="session")
def render() -> Callable[[str, bool], Render]:
    """render(values_file_name | "defaults", with_crd_apis) -> Render, cached for the session."""
    return render_values


@pytest.fixture(scope="session")
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """{(apiVersion, kind): validator} for the KServe and prometheus-operator kinds, unknown fields rejected."""
    return _crd_validators()


@pytest.fixture(scope="session")
def helm() -> str:
    return find_tool("helm")


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture(scope="session")
def hadolint() -> str:
    return find_tool("hadolint")


@pytest.fixture
def tmp_values(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Path]]:
    """Write a values dict to a file and return its path."""
    count = 0

    def write(values: dict[str, Any]) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"values-{count}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    yield write
