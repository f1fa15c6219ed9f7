"""Start the project's real programs as processes on loopback ports they pick themselves."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
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
    lines: list[str] = field(default_factory=list)

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def start(args: list[str], *, ready: str = "listening on ", env: dict[str, str] | None = None,
          timeout: float = 30.0, stderr: Any = subprocess.DEVNULL) -> Proc:
    """Run ``args`` and wait for the line starting with ``ready``; the rest of it is the address."""
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                             env={**os.environ, **(env or {})})
    assert popen.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([popen.stdout], [], [], 0.2)
        if readable:
            line = popen.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith(ready):
                return Proc(popen, line[len(ready):].strip(), lines)
        elif popen.poll() is not None:
            break
    popen.kill()
    raise RuntimeError(f"{args} did not print {ready!r}; output: {lines}")


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


def read_announcement(proc: Proc, prefix: str, timeout: float = 10.0) -> str:
    """Read further stdout lines of ``proc`` until one starts with ``prefix``; return the rest of it."""
    assert proc.popen.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.popen.stdout], [], [], 0.2)[0]:
            line = proc.popen.stdout.readline()
            if not line:
                break
            proc.lines.append(line.rstrip("\n"))
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    raise RuntimeError(f"no {prefix!r} line; output: {proc.lines}")


def start_grader(port: int = 0) -> tuple[Proc, str]:
    """A grader service; returns the process and its metrics address."""
    proc = start([*CLI, "serve", "grader", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0"])
    return proc, read_announcement(proc, "metrics on ")


def start_dispatcher(grader: str, db: Path, *extra: str, port: int = 0) -> tuple[Proc, str]:
    """A dispatcher service; returns the process and its metrics address."""
    proc = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", str(port), "--grader", grader,
                  "--db", str(db), "--metrics-port", "0", *extra])
    return proc, read_announcement(proc, "metrics on ")
