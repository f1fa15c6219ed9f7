"""``anesbench up``: grader + dispatcher (+ the stand-in model server) on loopback, for development."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time

import click

from anesbench.errors import AnesbenchError

STARTUP_SECONDS = 30.0


class StartupFailed(AnesbenchError):
    """A child service did not come up."""


def _spawn(args: list[str], name: str) -> tuple[subprocess.Popen[str], str]:
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert popen.stdout is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if select.select([popen.stdout], [], [], 0.2)[0]:
            line = popen.stdout.readline()
            if line.startswith("listening on "):
                return popen, line.removeprefix("listening on ").strip()
            if not line:
                break
        elif popen.poll() is not None:
            break
    popen.kill()
    raise StartupFailed(f"{name} did not start (exit code {popen.poll()})")


def _stop(children: list[tuple[str, subprocess.Popen[str]]], timeout: float = 20.0) -> int:
    worst = 0
    for _, popen in reversed(children):
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
    for name, popen in reversed(children):
        try:
            code = popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            code = popen.wait()
        click.echo(f"{name} stopped (exit code {code})", err=True)
        worst = max(worst, abs(code))
    return worst


@click.command()
@click.option("--db", default="./anesbench.duckdb", show_default=True)
@click.option("--grader-port", type=click.IntRange(0, 65535), default=0, help="Default: any free port.")
@click.option("--dispatcher-port", type=click.IntRange(0, 65535), default=50051, show_default=True)
@click.option("--metrics/--no-metrics", default=True, show_default=True, help="Serve /metrics on free ports.")
@click.option("--standin/--no-standin", default=False, help="Also start the stand-in model server (a test tool).")
@click.option("--standin-latency-ms", type=float, default=50.0, show_default=True)
@click.option("--datasets-dir", type=click.Path(file_okay=False), default=None)
def up(db: str, grader_port: int, dispatcher_port: int, metrics: bool, standin: bool, standin_latency_ms: float,
       datasets_dir: str | None) -> None:
    """Start the services locally on 127.0.0.1 until Ctrl-C, then stop them cleanly."""
    cli = [sys.executable, "-m", "anesbench.cli.main", "serve"]
    metric_args = ["--metrics-port", "0"] if metrics else []
    children: list[tuple[str, subprocess.Popen[str]]] = []
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if standin:
            popen, url = _spawn([sys.executable, "-m", "anesbench.standin", "--host", "127.0.0.1", "--port", "0",
                                 "--latency-ms", str(standin_latency_ms)], "stand-in")
            children.append(("stand-in", popen))
            click.echo(f"stand-in model server  {url}   (a pipeline check, not a model)")
        popen, grader = _spawn([*cli, "grader", "--host", "127.0.0.1", "--port", str(grader_port), *metric_args],
                               "grader")
        children.append(("grader", popen))
        click.echo(f"grader                 {grader}")
        dispatcher_args = [*cli, "dispatcher", "--host", "127.0.0.1", "--port", str(dispatcher_port),
                           "--grader", grader, "--db", db, *metric_args]
        if datasets_dir:
            dispatcher_args += ["--datasets-dir", datasets_dir]
        popen, dispatcher = _spawn(dispatcher_args, "dispatcher")
        children.append(("dispatcher", popen))
        click.echo(f"dispatcher             {dispatcher}")
        click.echo(f"try: anesbench run --dispatcher {dispatcher} --endpoint URL --model NAME --dataset FILE",
                   err=True)
        sys.stdout.flush()
        while not stop:
            for name, popen in children:
                if popen.poll() is not None:
                    raise StartupFailed(f"{name} exited unexpectedly (exit code {popen.returncode})")
            time.sleep(0.2)
    finally:
        code = _stop(children)
    if code:
        sys.exit(1)
