"""Start the project's real programs as processes on loopback ports they pick themselves.

The one process-starting helper of the test suite (and of bench/run_bench.py): :func:`start` runs a
command and waits for the line that announces its address; :class:`Proc` stops it, reads further
lines and, when asked to keep it, its stderr log. :class:`GraderProcess` is a grader that is ready
(health SERVING) once constructed; tests/integration/conftest.py wraps it in fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "anesbench.cli.main"]


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    address: str
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    log_path: Path | None = None  # where stderr goes when start(..., keep_log=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int:
        """Send ``sig`` (SIGTERM by default), wait up to ``timeout`` s, then SIGKILL; the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (no drain) and reap."""
        self.stop(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        """What the process wrote to stderr so far ("" unless started with ``keep_log=True``)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill the process if it still runs and remove its log (stdout is left to the reader thread)."""
        self.kill()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        """The rest of the next stdout line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        exited = self.popen.poll()
        state = f"exited with {exited}" if exited is not None else f"still running after {timeout:g} s"
        log = f"; stderr: {self.log()}" if self.log_path is not None else ""
        raise RuntimeError(f"{self.popen.args!r} printed no {prefix!r} line ({state}); output: {seen}{log}")


def _sigint_as_from_a_terminal() -> None:
    """Let the programs we start turn SIGINT into KeyboardInterrupt, as in a shell's foreground job.

    A shell starts background jobs (``pytest ... &``, some CI runners) with SIGINT ignored, and an
    ignored signal stays ignored across fork and exec: Python in the child then never raises
    KeyboardInterrupt, and a test that presses Ctrl-C sees the program run on. A handler (rather
    than "ignore") is reset to the default by exec, so installing Python's own handler here gives
    every child the default. (Not in the child before exec: running Python code between fork and
    exec aborts a child of a process that has gRPC threads.)
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_sigint_as_from_a_terminal()


def popen(args: list[str], **options: Any) -> subprocess.Popen[str]:
    """``subprocess.Popen`` in the repository root, in text mode (stop it with ``.send_signal``/``.kill``)."""
    options.setdefault("cwd", ROOT)
    return subprocess.Popen(args, text=True, **options)


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    # A thread reads stdout so that no line is stranded in a buffer that select() cannot see.
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start(args: list[str], *, ready: str = "listening on ", env: dict[str, str] | None = None,
          timeout: float = 30.0, stderr: Any = subprocess.DEVNULL, keep_log: bool = False) -> Proc:
    """Run ``args`` and wait for the line starting with ``ready``; the rest of it is the address.

    ``keep_log``: stderr goes to a temporary file (``Proc.log()``, removed by ``Proc.close()``)
    instead of ``stderr``, and a failed start shows it.
    """
    log_path: Path | None = None
    if keep_log:
        handle, name = tempfile.mkstemp(prefix="anesbench-test-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    with open(log_path, "wb") if log_path is not None else contextlib.nullcontext(stderr) as err:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
                                 env={**os.environ, **(env or {})})
    proc = Proc(child, "", log_path=log_path)
    threading.Thread(target=_pump, args=(child.stdout, proc.lines), daemon=True).start()
    try:
        proc.address = proc.wait_line(ready, timeout)
    except BaseException:
        proc.close()
        raise
    return proc


def start_standin(*options: str, env: dict[str, str] | None = None) -> Proc:
    """The OpenAI-compatible stand-in; ``address`` is its base URL (http://127.0.0.1:PORT/v1)."""
    return start([sys.executable, "-m", "anesbench_testkit.standin", "--host", "127.0.0.1", "--port", "0", *options],
                 env=env)


def http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def standin_stats(base_url: str) -> dict[str, Any]:
    return http_json(base_url.removesuffix("/v1") + "/_stats")


def standin_intended(base_url: str) -> dict[str, list[str | None]]:
    """What each reply the stand-in sent commits to, by request_hash (one entry per choice)."""
    return http_json(base_url.removesuffix("/v1") + "/_intended")


def standin_control(base_url: str, **changes: Any) -> dict[str, Any]:
    return http_json(base_url.removesuffix("/v1") + "/_control", changes)


def metric(address: str, name: str) -> float:
    """The value of ``name`` on a /metrics endpoint at ``address`` (HOST:PORT), summed over its labels."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout, input=stdin,
                          env={**os.environ, **(env or {})})


def _wait_line_or_close(proc: Proc, prefix: str, timeout: float) -> str:
    try:
        return proc.wait_line(prefix, timeout)
    except BaseException:
        proc.close()
        raise


# True: start graders with the real command line (`anesbench serve grader`); False: call
# anesbench.grader.server.serve() directly, to test the server without the CLI.
GRADER_USE_CLI = True


def grader_command(port: int = 0, metrics_port: int | None = 0) -> list[str]:
    """The command line of a grader on 127.0.0.1:``port``; ``metrics_port`` None: no /metrics."""
    if GRADER_USE_CLI:
        command = [*CLI, "serve", "grader", "--host", "127.0.0.1", "--port", str(port)]
        return command + ([] if metrics_port is None else ["--metrics-port", str(metrics_port)])
    code = (
        "import sys; from anesbench.grader.server import serve; "
        f"sys.exit(serve(host='127.0.0.1', port={port}, metrics_port={metrics_port!r}))"
    )
    return [sys.executable, "-c", code]


def wait_serving(address: str, timeout: float = 30.0) -> None:
    """Poll grpc.health.v1 on ``address`` until the whole server ("") reports SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            with contextlib.suppress(grpc.RpcError):
                return health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                    health_pb2.HealthCheckResponse.SERVING
            return False

        wait_until(serving, f"{address} to report SERVING", timeout=timeout, interval=0.05)


class GraderProcess(Proc):
    """A grader (:func:`grader_command`) whose health is SERVING; ``address`` is ``127.0.0.1:PORT``.

    Health turns SERVING after the service has started, a little after the ``listening on`` line;
    the constructor waits for that. Stderr is kept (``log()``) unless
    ``keep_log`` is false; ``close()`` removes it.
    """

    def __init__(self, port: int = 0, metrics_port: int | None = 0, *, start_timeout: float = 20.0,
                 keep_log: bool = True) -> None:
        proc = start(grader_command(port, metrics_port), timeout=start_timeout, keep_log=keep_log)
        super().__init__(proc.popen, proc.address, proc.lines, proc.log_path)
        self.port = int(self.address.rsplit(":", 1)[1])
        self.metrics_address = None if metrics_port is None else _wait_line_or_close(self, "metrics on ", start_timeout)
        try:
            wait_serving(self.address, start_timeout)
        except AssertionError as exc:
            self.close()
            raise AssertionError(f"{exc}\n{self.log()}") from None

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.popen

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"


def start_grader(port: int = 0) -> tuple[Proc, str]:
    """A grader service, SERVING; returns the process and its metrics address (stop it with ``stop()``)."""
    proc = GraderProcess(port, keep_log=False)
    assert proc.metrics_address is not None
    return proc, proc.metrics_address


def start_dispatcher(grader: str, db: Path, *extra: str, port: int = 0) -> tuple[Proc, str]:
    """A dispatcher service; returns the process and its metrics address."""
    proc = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", str(port), "--grader", grader,
                  "--db", str(db), "--metrics-port", "0", *extra])
    return proc, proc.wait_line("metrics on ")
