"""A real Prometheus server for integration tests: scrape our /metrics, query with PromQL.

    with Prometheus(["127.0.0.1:9464"]) as prom:
        ...  # generate some traffic
        value = prom.wait_for_value("sum(anesbench_grader_items_total)", lambda v: v >= 10)

Needs the ``prometheus`` binary (Debian package ``prometheus``; set PROMETHEUS_BIN to override).
Each instance listens on a free loopback port, keeps its TSDB in a temporary directory, scrapes
every second, and is stopped (and its directory removed) on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.waiting import wait_until


def prometheus_binary() -> str | None:
    return (
        os.environ.get("PROMETHEUS_BIN")
        or shutil.which("prometheus")
        or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    def __init__(self, targets: Sequence[str], *, scrape_interval: str = "1s", start_timeout: float = 20.0):
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.start_timeout = start_timeout
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError("prometheus binary not found (apt-get install prometheus, or set PROMETHEUS_BIN)")
        self._dir = tempfile.TemporaryDirectory(prefix="anesbench-prometheus-")
        root = Path(self._dir.name)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
            "scrape_configs": [{"job_name": "anesbench", "static_configs": [{"targets": self.targets}]}],
        }
        (root / "prometheus.yml").write_text(json.dumps(config))  # JSON is valid YAML
        # Prometheus cannot report a port it picked itself, so pick one; retry if someone beats us to it.
        for _ in range(3):
            self.port = free_port()
            self._log = open(root / "prometheus.log", "ab")  # noqa: SIM115 - closed in _kill()
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=self._log,
            )
            if self._wait_ready():
                return
            self._kill()
        log = (root / "prometheus.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"prometheus did not become ready:\n{log}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query; returns the ``data.result`` list (for a vector: metric + value)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def query_value(self, promql: str) -> float | None:
        """The single value of a query that yields one sample, or None when it yields nothing."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"query {promql!r} returned {len(result)} series")
        return float(result[0]["value"][1])

    def wait_for_value(self, promql: str, accept: Callable[[float], bool], *, timeout: float = 15.0) -> float:
        """Poll ``promql`` until its value satisfies ``accept``; returns that value (fails at ``timeout``)."""
        def accepted() -> list[float | None]:
            value = self.query_value(promql)
            return [value] if value is not None and accept(value) else []  # a list: 0.0 may be the value waited for

        return float(wait_until(accepted, f"{promql!r} to satisfy the condition", timeout=timeout, interval=0.25)[0])

    def targets_health(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            body = json.load(response)
        return [target["health"] for target in body["data"]["activeTargets"]]

    def stop(self) -> None:
        self._kill()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _kill(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        self._process = None
