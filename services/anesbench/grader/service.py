"""GraderServicer: the gRPC adapter over ``anesbench.grading.extract_answer``.

It only translates: validate the request (``_limits``), grade off the event loop, count. With a
:class:`GradingPool` (the grader service) grading runs in worker processes under a deadline, so a
pathological reply fails alone instead of wedging the replica; without one (tests, tools) it runs
in the loop's default thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc

from anesbench import metrics
from anesbench.errors import GradingTimeout, InvalidInput
from anesbench.grader._limits import check_batch_size, check_item, where
from anesbench.grader._pool import Graded, GradingPool, Item, grade_items
from anesbench.grading import METHODS
from anesbench.serving import rpc
from anesbench.v1 import grader_pb2, grader_pb2_grpc

GRADER_SERVICE = grader_pb2.DESCRIPTOR.services_by_name["Grader"].full_name


def observe(rpc_name: str, code: grpc.StatusCode) -> None:
    metrics.GRADER_REQUESTS.labels(rpc_name, code.name).inc()


def declare_metrics() -> None:
    """Create the label sets up front so dashboards see zeros instead of missing series."""
    for method in METHODS:
        metrics.GRADER_ITEMS.labels(method)
    for rpc_name in ("Grade", "GradeStream"):
        metrics.GRADER_REQUESTS.labels(rpc_name, grpc.StatusCode.OK.name)


def as_item(request: grader_pb2.GradeRequest) -> Item:
    # Protobuf maps have no order; hand the library the options in letter order, as a dataset would.
    return dict(sorted(request.choices.items())), request.response, request.finish_reason or None


class GraderServicer(grader_pb2_grpc.GraderServicer):
    """Serves anesbench.v1.Grader.

    ``draining``, when set, makes open GradeStreams answer the batch in hand and end with OK so their
    clients move to another replica; ``pool`` grades in killable worker processes (None: threads).
    """

    def __init__(self, *, draining: asyncio.Event | None = None, pool: GradingPool | None = None) -> None:
        self._draining = draining or asyncio.Event()
        self._pool = pool

    @rpc(observe=observe)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        at = where(None, request.id)
        _check(request, at=at)
        [result] = await self._grade([request], at=f"{at}: response")
        return result

    @rpc(observe=observe)
    async def GradeStream(
        self, request_iterator: AsyncIterator[grader_pb2.GradeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grader_pb2.GradeBatchResult]:
        metrics.GRADER_STREAMS.inc()
        try:
            number = 0
            while (batch := await self._next_batch(request_iterator)) is not None:
                check_batch_size(len(batch.items), batch=number)
                for index, item in enumerate(batch.items):
                    _check(item, at=where(index, item.id, batch=number))
                results = await self._grade(batch.items, at=f"batch {number}: one of its replies")
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

    async def _grade(self, requests: Sequence[grader_pb2.GradeRequest], *, at: str) -> list[grader_pb2.GradeResponse]:
        items = [as_item(request) for request in requests]
        try:
            if self._pool is None:
                graded = await asyncio.get_running_loop().run_in_executor(None, grade_items, items)
            else:
                graded = await self._pool.grade(items)
        except GradingTimeout as exc:
            raise InvalidInput(f"{at}: {exc}; too costly to grade") from exc
        return [_response(request.id, result) for request, result in zip(requests, graded, strict=True)]


def _response(request_id: str, graded: Graded) -> grader_pb2.GradeResponse:
    metrics.GRADER_DURATION.observe(graded.seconds)
    metrics.GRADER_ITEMS.labels(graded.method).inc()
    return grader_pb2.GradeResponse(id=request_id, pred=graded.pred or "", method=graded.method)


def _check(item: grader_pb2.GradeRequest, *, at: str) -> None:
    check_item(item.choices, item.response, item.finish_reason, item.id, at=at)
