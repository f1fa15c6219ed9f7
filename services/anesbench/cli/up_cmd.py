"""``anesbench up``: grader + dispatcher (+ the stand-in model server) on loopback, for development."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time

import click

from anesbench.errors import InvalidInput, StartupFailed

STARTUP_SECONDS = 30.0
STANDIN_MODULE = "anesbench_testkit.standin"  # a test tool, started as a process, never imported here


def _spawn(args: list[str], name: str, *announcements: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start a child and read the addresses it announces (``listening on …``, ``metrics on …``)."""
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert popen.stdout is not None
    wanted = list(announcements)
    found: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and len(found) < len(wanted):
        # readline, not select: the child prints its lines together and they share one buffer
        line = popen.stdout.readline()
        if not line:
            break
        if line.startswith(wanted[len(found)]):
            found.append(line.removeprefix(wanted[len(found)]).strip())
    if len(found) == len(wanted):
        return popen, found
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
@click.option("--standin-answer-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Dataset whose answers the stand-in knows (its replies then look like a model's).")
@click.option("--datasets-dir", type=click.Path(file_okay=False), default=None)
def up(db: str, grader_port: int, dispatcher_port: int, metrics: bool, standin: bool, standin_latency_ms: float,
       standin_answer_key: str | None, datasets_dir: str | None) -> None:
    """Start the services locally on 127.0.0.1 until Ctrl-C, then stop them cleanly."""
    cli = [sys.executable, "-m", "anesbench.cli.main", "serve"]
    metric_args = ["--metrics-port", "0"] if metrics else []
    served = ("listening on ", "metrics on ") if metrics else ("listening on ",)
    children: list[tuple[str, subprocess.Popen[str]]] = []
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    def start(name: str, label: str, args: list[str], announced: tuple[str, ...] = served, note: str = "") -> str:
        popen, (address, *metrics_address) = _spawn(args, name, *announced)
        children.append((name, popen))
        if metrics_address:
            note = f"   metrics http://{metrics_address[0]}/metrics"
        click.echo(f"{label:<23}{address}{note}")
        return address

    if standin and importlib.util.find_spec(STANDIN_MODULE.split(".")[0]) is None:
        raise InvalidInput("the stand-in model server is a test tool and is not installed here: "
                         "pip install -e ./testkit (make setup does), or start without {standin}",
                         field="standin", mentions=("standin",))
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if standin:
            key = ["--answer-key", standin_answer_key] if standin_answer_key else []
            start("stand-in", "stand-in model server", [sys.executable, "-m", STANDIN_MODULE, "--host", "127.0.0.1",
                                                        "--port", "0", "--latency-ms", str(standin_latency_ms), *key],
                  ("listening on ",), "   (a pipeline check, not a model; it serves --model standin)")
        grader = start("grader", "grader", [*cli, "grader", "--host", "127.0.0.1", "--port", str(grader_port),
                                            *metric_args])
        datasets = ["--datasets-dir", datasets_dir] if datasets_dir else []
        dispatcher = start("dispatcher", "dispatcher", [*cli, "dispatcher", "--host", "127.0.0.1", "--port",
                                                        str(dispatcher_port), "--grader", grader, "--db", db,
                                                        *metric_args, *datasets])
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
