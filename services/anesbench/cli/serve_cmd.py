"""``anesbench serve grader|dispatcher``: the gRPC services; ``anesbench up``: grader + dispatcher (+ the stand-in
model server) on loopback, for development."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from typing import Any

import click

from anesbench.cli import option_group
from anesbench.errors import InvalidInput, StartupFailed

PEM = click.Path(dir_okay=False)
STARTUP_SECONDS = 30.0
STANDIN_MODULE = "anesbench_testkit.standin"  # a test tool, started as a process, never imported here


# --health-port and --tls-cert/--tls-key/--tls-client-ca, the same on both servers
_tls_options = option_group(
    click.option("--health-port", type=click.IntRange(0, 65535), default=None,
                 help="Also serve grpc.health.v1 alone, in plain text, here (kubelet's gRPC probes cannot speak TLS)."),
    click.option("--tls-cert", type=PEM, default=None, help="Serve TLS with this PEM certificate (chain)."),
    click.option("--tls-key", type=PEM, default=None, help="The PEM private key of --tls-cert."),
    click.option("--tls-client-ca", type=PEM, default=None,
                 help="Mutual TLS: require client certificates signed by this PEM CA."),
)


@click.group()
def serve() -> None:
    """Run a gRPC service (health checking and reflection included; drains on SIGTERM)."""


@serve.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=50052, show_default=True, help="0 picks a free port.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, help="Serve /metrics here.")
@_tls_options
@click.option("--auth-token-file", type=PEM, default=None,
              help="Require this bearer token (the dispatcher's --grader-token-file) on every Grader RPC.")
def grader(tls_cert: str | None, tls_key: str | None, tls_client_ca: str | None, auth_token_file: str | None,
           **listen: Any) -> None:
    """Stateless answer extraction (Grade, GradeStream)."""
    from anesbench.grader.server import serve as serve_grader
    from anesbench.serving.security import read_token, server_tls

    token = read_token(auth_token_file, "auth_token_file") if auth_token_file else None
    sys.exit(serve_grader(**listen, tls=server_tls(tls_cert, tls_key, tls_client_ca), token=token))


@serve.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=50051, show_default=True, help="0 picks a free port.")
@click.option("--grader", required=True, help="HOST:PORT of the grader service.")
@click.option("--db", default="./anesbench.duckdb", show_default=True, help="DuckDB file this process owns.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, help="Serve /metrics here.")
@click.option("--datasets-dir", type=click.Path(file_okay=False), default=None,
              help="Directory of datasets runs may name.")
@click.option("--allow-endpoint", "allowed_endpoints", multiple=True,
              help="URL prefix runs may call (repeatable); none: loopback only.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="API key for endpoints (else $ANESBENCH_API_KEY or $OPENAI_API_KEY).")
@click.option("--grader-connections", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Connections to the grader service; a Service balances connections, so this spreads replicas.")
@click.option("--endpoint-key-file", "endpoint_keys", multiple=True, metavar="URL_PREFIX=FILE",
              help="API key (in FILE) sent only to endpoints under URL_PREFIX (repeatable); the longest prefix wins.")
@click.option("--auth-token-file", type=PEM, default=None,
              help="Runner role: require this bearer token on every Dispatcher RPC (else $ANESBENCH_DISPATCHER_TOKEN).")
@click.option("--read-token-file", type=PEM, default=None,
              help="Reader role: this bearer token may call ListRuns, GetRun, WatchRun, GetLeaderboard, ExportResults, "
                   "GetReportFigures.")
@_tls_options
@click.option("--grader-ca", type=PEM, default=None, help="Speak TLS to the grader and trust this PEM CA.")
@click.option("--grader-cert", type=PEM, default=None, help="Client certificate for a mutual-TLS grader.")
@click.option("--grader-key", type=PEM, default=None, help="The PEM private key of --grader-cert.")
@click.option("--grader-token-file", type=PEM, default=None, help="Bearer token the grader requires.")
@click.option("--allow-inference-service", "allowed_inference_services", multiple=True, metavar="NAME",
              help="An InferenceService runs may name (repeatable); none: any in --kube-namespace.")
@click.option("--max-upload-bytes", type=click.IntRange(0), default=0,
              help="Largest dataset a run may upload, in bytes (0: only the 64 MiB message limit).")
@click.option("--store-budget-bytes", type=click.IntRange(0), default=0,
              help="Refuse new runs once the DuckDB file would pass this many bytes (0: no budget).")
@click.option("--kube-namespace", default=None,
              help="Drive KServe InferenceServices in this namespace (runs may then name --inference-service).")
@click.option("--instance-name", "kube_owner", default="anesbench-dispatcher", show_default=True,
              help="Marks the on-demand models this dispatcher starts (annotation anesbench.io/started-by).")
@click.option("--gpu-budget", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="On-demand models up at once; runs beyond it wait (0: no limit).")
@click.option("--model-idle-seconds", type=click.FloatRange(0, 86_400), default=300.0, show_default=True,
              help="Grace period before an on-demand model no run needs is stopped.")
@click.option("--ready-timeout", type=click.FloatRange(1, 86_400), default=1800.0, show_default=True,
              help="Seconds a run waits for its InferenceService to become Ready, then fails.")
@click.option("--grader-grace", type=click.FloatRange(1, 86400), default=120.0, show_default=True,
              help="Seconds to keep re-sending to a grader that is down before its runs fail (resumable).")
def dispatcher(api_key_file: str | None, endpoint_keys: tuple[str, ...], auth_token_file: str | None,
               read_token_file: str | None, tls_cert: str | None, tls_key: str | None, tls_client_ca: str | None,
               grader_ca: str | None, grader_cert: str | None, grader_key: str | None, grader_token_file: str | None,
               **settings: Any) -> None:
    """Owns runs and the DuckDB file; keeps the inference servers busy."""
    from anesbench.dispatcher.server import DispatcherSettings, server_token
    from anesbench.dispatcher.server import serve as serve_dispatcher
    from anesbench.inference.endpoint import load_api_key, load_endpoint_keys
    from anesbench.serving.security import client_tls, read_token, server_tls

    sys.exit(serve_dispatcher(DispatcherSettings(
        **settings, api_key=load_api_key(api_key_file), auth_token=server_token(auth_token_file),
        endpoint_keys=load_endpoint_keys(endpoint_keys),
        read_token=read_token(read_token_file, "read_token_file") if read_token_file else None,
        tls=server_tls(tls_cert, tls_key, tls_client_ca),
        grader_tls=client_tls(grader_ca, grader_cert, grader_key, prefix="grader"),
        grader_token=read_token(grader_token_file, "grader_token_file") if grader_token_file else None,
    )))


def _start(children: list[tuple[str, subprocess.Popen[str]]], name: str, label: str, args: list[str],
           announced: tuple[str, ...], note: str = "") -> str:
    """Start a child, read the addresses it announces (``listening on …``, ``metrics on …``) and show them."""
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert popen.stdout is not None
    found: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and len(found) < len(announced):
        # readline, not select: the child prints its lines together and they share one buffer
        line = popen.stdout.readline()
        if not line:
            break
        if line.startswith(announced[len(found)]):
            found.append(line.removeprefix(announced[len(found)]).strip())
    if len(found) < len(announced):
        popen.kill()
        raise StartupFailed(f"{name} did not start (exit code {popen.poll()})")
    children.append((name, popen))
    if len(found) > 1:
        note = f"   metrics http://{found[1]}/metrics"
    click.echo(f"{label:<23}{found[0]}{note}")
    return found[0]


def _stop(children: list[tuple[str, subprocess.Popen[str]]]) -> int:
    worst = 0
    for _, popen in reversed(children):
        popen.terminate()  # not one that has exited (Popen polls first)
    for name, popen in reversed(children):
        try:
            code = popen.wait(20.0)
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
    stop: list[int] = []  # the signals received

    if standin and importlib.util.find_spec(STANDIN_MODULE.split(".")[0]) is None:
        raise InvalidInput("the stand-in model server is a test tool and is not installed here: "
                         "pip install -e ./testkit (make setup does), or start without {standin}",
                         field="standin", mentions=("standin",))
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    try:
        if standin:
            key = ["--answer-key", standin_answer_key] if standin_answer_key else []
            _start(children, "stand-in", "stand-in model server", [sys.executable, "-m", STANDIN_MODULE, "--host",
                   "127.0.0.1", "--port", "0", "--latency-ms", str(standin_latency_ms), *key],
                   ("listening on ",), "   (a pipeline check, not a model; it serves --model standin)")
        grader = _start(children, "grader", "grader", [*cli, "grader", "--host", "127.0.0.1", "--port",
                                                       str(grader_port), *metric_args], served)
        datasets = ["--datasets-dir", datasets_dir] if datasets_dir else []
        dispatcher = _start(children, "dispatcher", "dispatcher", [*cli, "dispatcher", "--host", "127.0.0.1", "--port",
                                                                   str(dispatcher_port), "--grader", grader, "--db", db,
                                                                   *metric_args, *datasets], served)
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
