"""The grader process: GraderServicer, the gRPC adapter over ``anesbench.grading.extract_answer``,
behind the shared serving lifecycle (health, reflection, drain).

The servicer only translates: validate the request (the limits in ``local``), grade off the event loop, count.
Grading runs in the loop's default thread pool: the rules cost time linear in the reply, and the
limits cap a reply at 1 MiB (under 1 s of CPU measured on the most hostile shapes,
docs/performance.md), so no reply can hold a thread for long and there is nothing to kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc

from anesbench import metrics, serving
from anesbench.grader.local import check_batch_size, check_item, where
from anesbench.grading import METHODS, extract_answer
from anesbench.serving.security import ServerTls, TokenRoles
from anesbench.serving.status import rpc
from anesbench.v1 import grader_pb2, grader_pb2_grpc

CALLER = "dispatcher"  # the grader's one role: whoever holds its token may grade
DENIED = "this grader requires the dispatcher's bearer token (--grader-token-file on the dispatcher)"


def grade_batch(requests: Sequence[grader_pb2.GradeRequest]) -> list[grader_pb2.GradeResponse]:
    """Grade a batch (blocking: runs in a thread), timing each item for the duration histogram."""
    responses = []
    for request in requests:
        choices, response, finish_reason = as_item(request)
        with metrics.GRADER_DURATION.time():
            extraction = extract_answer(choices, response, finish_reason=finish_reason)
        metrics.GRADER_ITEMS.labels(extraction.method).inc()
        responses.append(grader_pb2.GradeResponse(id=request.id, pred=extraction.pred or "", method=extraction.method))
    return responses


def observe(rpc_name: str, code: grpc.StatusCode) -> None:
    metrics.GRADER_REQUESTS.labels(rpc_name, code.name).inc()


def declare_metrics() -> None:
    """Create the label sets up front so dashboards see zeros instead of missing series."""
    for method in METHODS:
        metrics.GRADER_ITEMS.labels(method)
    for rpc_name in ("Grade", "GradeStream"):
        metrics.GRADER_REQUESTS.labels(rpc_name, grpc.StatusCode.OK.name)


def as_item(request: grader_pb2.GradeRequest) -> tuple[dict[str, str], str, str | None]:
    # Protobuf maps have no order; hand the library the options in letter order, as a dataset would.
    return dict(sorted(request.choices.items())), request.response, request.finish_reason or None


class GraderServicer(grader_pb2_grpc.GraderServicer, serving.Service):
    """Serves anesbench.v1.Grader; also the grader's :class:`anesbench.serving.Service`: one process,
    grading in threads (scale out with replicas), nothing to start (the rules are compiled at import) or release.

    Once drained, open GradeStreams answer the batch in hand and end with OK so their clients move to
    another replica.
    """

    service_names: Sequence[str] = (grader_pb2.DESCRIPTOR.services_by_name["Grader"].full_name,)

    def __init__(self) -> None:
        self._draining = asyncio.Event()

    def register(self, server: grpc.aio.Server) -> None:
        grader_pb2_grpc.add_GraderServicer_to_server(self, server)

    def drain(self) -> None:
        self._draining.set()

    @rpc(observe=observe)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        check_item(request.choices, request.response, request.finish_reason, request.id, at=where(None, request.id))
        [result] = await self._grade([request])
        return result

    @rpc(observe=observe)
    async def GradeStream(
        self, request_iterator: AsyncIterator[grader_pb2.GradeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grader_pb2.GradeBatchResult]:
        metrics.GRADER_STREAMS.inc()
        try:
            number = 0
            while (batch := await self._next_batch(request_iterator)) is not None:
                check_batch_size(len(batch.items), number)
                for index, item in enumerate(batch.items):
                    check_item(item.choices, item.response, item.finish_reason, item.id,
                               at=where(index, item.id, batch=number))
                results = await self._grade(batch.items)
                yield grader_pb2.GradeBatchResult(results=results)
                number += 1
        finally:
            metrics.GRADER_STREAMS.dec()

    async def _next_batch(self, batches: AsyncIterator[grader_pb2.GradeBatch]) -> grader_pb2.GradeBatch | None:
        """The next batch; None when the client finished sending or the server is draining."""
        if self._draining.is_set():
            return None
        read = asyncio.ensure_future(anext(batches, None))
        drained = asyncio.ensure_future(self._draining.wait())
        await asyncio.wait({read, drained}, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if read.done():
            return read.result()  # a batch that was read is always answered, draining or not
        read.cancel()
        return None

    async def _grade(self, requests: Sequence[grader_pb2.GradeRequest]) -> list[grader_pb2.GradeResponse]:
        return await asyncio.get_running_loop().run_in_executor(None, grade_batch, requests)


def serve(
    *, host: str, port: int, metrics_port: int | None, grace_seconds: float = 10.0,
    health_port: int | None = None, tls: ServerTls | None = None, token: str | None = None,
) -> int:
    """Run the grader until SIGTERM/SIGINT, then drain (:func:`anesbench.serving.run`); returns the exit code.
    With ``token`` every Grader call must carry it (health stays open); with ``tls`` it speaks TLS."""
    declare_metrics()
    roles = (TokenRoles({token: CALLER}, lambda role, method: True, unauthenticated=DENIED),) if token else ()
    config = serving.ServeConfig(host=host, port=port, metrics_port=metrics_port, grace_seconds=grace_seconds,
                                 interceptors=roles, tls=tls, health_port=health_port)
    return serving.serve(GraderServicer, config)
