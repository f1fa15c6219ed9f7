"""Fixtures that run the grader as a real process on a free loopback port.

``start_grader()`` starts one and parses the ``listening on HOST:PORT`` / ``metrics on HOST:PORT``
lines it prints; every process a test started is killed when the test ends.
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Flip to True once `anesbench serve grader` exists (services/anesbench/cli/): the fixtures then
# test the real command line instead of calling serve() directly.
USE_CLI = False

# --- temporary stand-in for anesbench.grading ----------------------------------------------------
# The grading library is being written concurrently. Until `anesbench.grading.extract_answer`
# exists, this shim (installed here and in every grader process the fixtures start) gives the
# tests a deterministic extractor with the agreed API. Delete it once the library has landed.
GRADING_SHIM = r"""
import re
from dataclasses import dataclass

METHODS = ("answer_is", "single_letter", "none")


@dataclass(frozen=True)
class Extraction:
    pred: "str | None"
    method: str


def extract_answer(choices, response, *, finish_reason=None):
    match = re.search(r"answer is \(?([A-H])\b", response)
    if match and match.group(1) in choices:
        return Extraction(match.group(1), "answer_is")
    letters = {c for c in re.findall(r"\b([A-H])\b", response) if c in choices}
    if len(letters) == 1 and finish_reason != "length":
        return Extraction(letters.pop(), "single_letter")
    return Extraction(None, "none")
"""
SHIM_PRELUDE = f"""
import sys, types
import anesbench
_grading = types.ModuleType("anesbench.grading")
sys.modules["anesbench.grading"] = anesbench.grading = _grading
exec({GRADING_SHIM!r}, _grading.__dict__)
"""


def _grading_library_present() -> bool:
    try:
        return hasattr(importlib.import_module("anesbench.grading"), "extract_answer")
    except ImportError:
        return False


NEEDS_SHIM = not _grading_library_present()
if NEEDS_SHIM:
    exec(SHIM_PRELUDE, {"__name__": "grading_shim"})  # noqa: S102 - our own constant source


# --- grader processes ----------------------------------------------------------------------------
def grader_command(port: int, metrics_port: int | None) -> list[str]:
    if USE_CLI:
        command = [sys.executable, "-m", "anesbench.cli.main", "serve", "grader", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        return command + ([] if metrics_port is None else ["--metrics-port", str(metrics_port)])
    code = (
        "import sys; from anesbench.grader.server import serve; "
        f"sys.exit(serve(host='127.0.0.1', port={port}, metrics_port={metrics_port!r}))"
    )
    return [sys.executable, "-c", (SHIM_PRELUDE if NEEDS_SHIM else "") + code]


class GraderProcess:
    """A grader started with ``grader_command``; ``address`` is ``127.0.0.1:PORT``."""

    def __init__(self, port: int = 0, metrics_port: int | None = 0, *, start_timeout: float = 20.0) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="grader-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            grader_command(port, metrics_port), cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log
        )
        self.address = self._expect("listening on ", start_timeout)
        self.port = int(self.address.rsplit(":", 1)[1])
        self.metrics_address = None if metrics_port is None else self._expect("metrics on ", start_timeout)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def _expect(self, prefix: str, timeout: float) -> str:
        line = self._readline(timeout)
        if not line.startswith(prefix):
            raise AssertionError(f"expected {prefix!r}..., got {line!r}\n{self.log()}")
        return line[len(prefix) :]

    def _readline(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.kill()
                raise TimeoutError(f"grader printed nothing within {timeout} s\n{self.log()}")
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(
                    f"grader exited with {self.process.wait()} before printing\n{self.log()}"
                )
            data += chunk
        return data.decode().strip()

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


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
