"""``anesbench serve grader|dispatcher``: the gRPC services."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

PEM = click.Path(dir_okay=False)


def _tls_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--tls-cert/--tls-key/--tls-client-ca and --health-port, the same on both servers."""
    for option in reversed((
        click.option("--health-port", type=click.IntRange(0, 65535), default=None,
                     help="Also serve grpc.health.v1 alone, in plain text, here (kubelet's gRPC probes cannot speak TLS)."),
        click.option("--tls-cert", type=PEM, default=None, help="Serve TLS with this PEM certificate (chain)."),
        click.option("--tls-key", type=PEM, default=None, help="The PEM private key of --tls-cert."),
        click.option("--tls-client-ca", type=PEM, default=None,
                     help="Mutual TLS: require client certificates signed by this PEM CA."),
    )):
        fn = option(fn)
    return fn


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
def grader(host: str, port: int, metrics_port: int | None, health_port: int | None, tls_cert: str | None,
           tls_key: str | None, tls_client_ca: str | None, auth_token_file: str | None) -> None:
    """Stateless answer extraction (Grade, GradeStream)."""
    from anesbench.grader.server import serve as serve_grader
    from anesbench.serving.security import read_token, server_tls

    token = read_token(auth_token_file, "auth_token_file") if auth_token_file else None
    sys.exit(serve_grader(host=host, port=port, metrics_port=metrics_port, health_port=health_port,
                          tls=server_tls(tls_cert, tls_key, tls_client_ca), token=token))


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
    from anesbench.inference import load_api_key
    from anesbench.inference.credentials import load_endpoint_keys
    from anesbench.serving.security import client_tls, read_token, server_tls

    sys.exit(serve_dispatcher(DispatcherSettings(
        **settings, api_key=load_api_key(api_key_file), auth_token=server_token(auth_token_file),
        endpoint_keys=load_endpoint_keys(endpoint_keys),
        read_token=read_token(read_token_file, "read_token_file") if read_token_file else None,
        tls=server_tls(tls_cert, tls_key, tls_client_ca),
        grader_tls=client_tls(grader_ca, grader_cert, grader_key, prefix="grader"),
        grader_token=read_token(grader_token_file, "grader_token_file") if grader_token_file else None,
    )))
