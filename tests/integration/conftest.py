"""Fixtures that run the grader as a real process on a free loopback port.

The processes come from tests/procs.py, the suite's one process-starting helper:
``GraderProcess`` parses the ``listening on HOST:PORT`` / ``metrics on HOST:PORT`` lines the grader
prints and waits for health SERVING. Every process a test started is killed when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.procs import ROOT, GraderProcess, grader_command

__all__ = ["ROOT", "GraderProcess", "grader", "grader_command", "start_grader"]


@pytest.fixture
def start_grader() -> Iterator[Callable[..., GraderProcess]]:
    """Factory: ``start_grader(port=0, metrics_port=0)``; processes die with the test."""
    started: list[GraderProcess] = []

    def start(port: int = 0, metrics_port: int | None = 0) -> GraderProcess:
        started.append(GraderProcess(port, metrics_port))
        return started[-1]

    yield start
    for process in started:
        process.close()


@pytest.fixture(scope="module")
def grader() -> Iterator[GraderProcess]:
    """One grader shared by the tests of a module that do not stop it."""
    process = GraderProcess()
    yield process
    process.close()
