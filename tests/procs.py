"""Start the project's real programs as processes on loopback ports they pick themselves."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "anesbench.cli.main"]


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    address: str
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

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
        raise RuntimeError(f"{self.popen.args} printed no {prefix!r} line; output: {seen}")


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    # A thread reads stdout so that no line is stranded in a buffer that select() cannot see.
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start(args: list[str], *, ready: str = "listening on ", env: dict[str, str] | None = None,
          timeout: float = 30.0, stderr: Any = subprocess.DEVNULL) -> Proc:
    """Run ``args`` and wait for the line starting with ``ready``; the rest of it is the address."""
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                             env={**os.environ, **(env or {})})
    proc = Proc(popen, "")
    threading.Thread(target=_pump, args=(popen.stdout, proc.lines), daemon=True).start()
    try:
        proc.address = proc.wait_line(ready, timeout)
    except RuntimeError:
        popen.kill()
        raise
    return proc


def start_standin(*options: str, env: dict[str, str] | None = None) -> Proc:
    """The OpenAI-compatible stand-in; ``address`` is its base URL (http://127.0.0.1:PORT/v1)."""
    return start([sys.executable, "-m", "anesbench.standin", "--host", "127.0.0.1", "--port", "0", *options],
                 env=env)


def http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def standin_stats(base_url: str) -> dict[str, Any]:
    return http_json(base_url.removesuffix("/v1") + "/_stats")


def standin_control(base_url: str, **changes: Any) -> dict[str, Any]:
    return http_json(base_url.removesuffix("/v1") + "/_control", changes)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout, input=stdin,
                          env={**os.environ, **(env or {})})


def start_grader(port: int = 0) -> tuple[Proc, str]:
    """A grader service; returns the process and its metrics address."""
    proc = start([*CLI, "serve", "grader", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0"])
    return proc, proc.wait_line("metrics on ")


def start_dispatcher(grader: str, db: Path, *extra: str, port: int = 0) -> tuple[Proc, str]:
    """A dispatcher service; returns the process and its metrics address."""
    proc = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", str(port), "--grader", grader,
                  "--db", str(db), "--metrics-port", "0", *extra])
    return proc, proc.wait_line("metrics on ")
