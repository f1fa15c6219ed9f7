"""The grader process: GraderServicer behind the shared serving lifecycle (health, reflection, drain)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc

from anesbench import serving
from anesbench.grader.service import GRADER_SERVICE, GraderServicer, declare_metrics
from anesbench.v1 import grader_pb2_grpc

# Grading is CPU-bound Python, so more threads than this only add GIL contention; a few keep the
# loop free while one stream's batch is being graded.
WORKERS = min(4, os.cpu_count() or 1)


class GraderApp:
    """The grader as a :class:`anesbench.serving.Service`."""

    service_names: Sequence[str] = (GRADER_SERVICE,)

    def __init__(self) -> None:
        self._draining = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="grade")
        self.servicer = GraderServicer(draining=self._draining, executor=self._executor)

    def register(self, server: grpc.aio.Server) -> None:
        grader_pb2_grpc.add_GraderServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        # Grade one reply before reporting SERVING so the first real request does not pay for the
        # library's imports and regex compilation.
        await self.servicer.warm_up()

    def drain(self) -> None:
        self._draining.set()

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)


def serve(*, host: str, port: int, metrics_port: int | None, grace_seconds: float = 10.0) -> int:
    """Run the grader until SIGTERM/SIGINT, then drain; returns the process exit code.

    Prints ``listening on HOST:PORT`` as the first stdout line (the bound port when ``port`` is 0),
    then ``metrics on HOST:PORT`` when ``metrics_port`` is not None.
    """
    declare_metrics()
    config = serving.ServeConfig(host=host, port=port, metrics_port=metrics_port, grace_seconds=grace_seconds)
    return serving.serve(GraderApp, config)
