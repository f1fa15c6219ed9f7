"""What a test does when a tool or file it needs is not installed: skip on a developer's machine,
fail under CI (``CI=true``), where every tool is installed and a missing one is a broken setup."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(message: str) -> NoReturn:
    """Skip the test with ``message`` (the command that installs what is missing); fail it under CI."""
    if under_ci():
        pytest.fail(f"{message} (CI is set: every tool must be installed)")
    pytest.skip(message)
