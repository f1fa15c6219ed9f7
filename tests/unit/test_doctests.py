"""The examples in docstrings are run: a module whose example no longer holds fails here."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"anesbench": ROOT / "services" / "anesbench", "anesbench_testkit": ROOT / "testkit" / "anesbench_testkit"}
MODULES = sorted(
    ".".join((name, *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
    for name, package in PACKAGES.items()
    for path in package.rglob("*.py")
    if "v1" not in path.relative_to(package).parts and ">>> " in path.read_text(encoding="utf-8")
)


def test_modules_with_examples_are_found() -> None:
    assert {"anesbench.limiter", "anesbench.grader.local", "anesbench_testkit.corpus"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted > 0, f"{name} has '>>> ' but no example was collected"
    assert result.failed == 0
