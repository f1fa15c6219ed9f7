"""The grader process: GraderServicer behind the shared serving lifecycle (health, reflection, drain)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc

from anesbench import serving
from anesbench.grader.service import GRADER_SERVICE, GraderServicer, declare_metrics
from anesbench.serving import ServerTls, TokenRoles
from anesbench.v1 import grader_pb2_grpc

CALLER = "dispatcher"  # the grader's one role: whoever holds its token may grade
DENIED = "this grader requires the dispatcher's bearer token (--grader-token-file on the dispatcher)"


class GraderApp:
    """The grader as a :class:`anesbench.serving.Service`: one process, grading in threads (scale out with replicas)."""

    service_names: Sequence[str] = (GRADER_SERVICE,)

    def __init__(self) -> None:
        self._draining = asyncio.Event()
        self.servicer = GraderServicer(draining=self._draining)

    def register(self, server: grpc.aio.Server) -> None:
        grader_pb2_grpc.add_GraderServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        """Nothing to start: the rules are compiled at import."""

    def drain(self) -> None:
        self._draining.set()

    async def shutdown(self) -> None:
        """Nothing to release."""


def serve(
    *, host: str, port: int, metrics_port: int | None, grace_seconds: float = 10.0,
    health_port: int | None = None, tls: ServerTls | None = None, token: str | None = None,
) -> int:
    """Run the grader until SIGTERM/SIGINT, then drain; returns the process exit code.

    Prints ``listening on HOST:PORT`` as the first stdout line (the bound port when ``port`` is 0),
    then ``metrics on HOST:PORT`` when ``metrics_port`` is not None. With ``token`` every Grader call
    must carry it (health stays open); with ``tls`` it speaks TLS.
    """
    declare_metrics()
    roles = (TokenRoles({token: CALLER}, lambda role, method: True, unauthenticated=DENIED),) if token else ()
    config = serving.ServeConfig(host=host, port=port, metrics_port=metrics_port, grace_seconds=grace_seconds,
                                 interceptors=roles, tls=tls, health_port=health_port)
    return serving.serve(GraderApp, config)
