"""Fixtures that run the grader as a real process on a free loopback port.

``start_grader()`` starts one and parses the ``listening on HOST:PORT`` / ``metrics on HOST:PORT``
lines it prints; every process a test started is killed when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING

# True: start graders with the real command line (`anesbench serve grader`); False: call
# anesbench.grader.server.serve() directly, to test the server without the CLI.
USE_CLI = True


def grader_command(port: int, metrics_port: int | None) -> list[str]:
    if USE_CLI:
        command = [sys.executable, "-m", "anesbench.cli.main", "serve", "grader", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        return command + ([] if metrics_port is None else ["--metrics-port", str(metrics_port)])
    code = (
        "import sys; from anesbench.grader.server import serve; "
        f"sys.exit(serve(host='127.0.0.1', port={port}, metrics_port={metrics_port!r}))"
    )
    return [sys.executable, "-c", code]


class GraderProcess:
    """A grader started with ``grader_command``; ``address`` is ``127.0.0.1:PORT``."""

    def __init__(self, port: int = 0, metrics_port: int | None = 0, *, start_timeout: float = 20.0) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="grader-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            grader_command(port, metrics_port), cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log
        )
        try:
            self.address = self._expect("listening on ", start_timeout)
            self.port = int(self.address.rsplit(":", 1)[1])
            self.metrics_address = None if metrics_port is None else self._expect("metrics on ", start_timeout)
            self._wait_serving(start_timeout)
        except BaseException:
            self.close()
            raise

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

    def _wait_serving(self, timeout: float) -> None:
        """Health turns SERVING once the grading workers are up (they start after the port is bound)."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                with contextlib.suppress(grpc.RpcError):
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == SERVING:
                        return
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"grader not SERVING within {timeout} s\n{self.log()}")

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
                raise AssertionError(f"grader exited with {self.process.wait()} before printing\n{self.log()}")
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
