"""GraderServicer: the gRPC adapter over ``anesbench.grading.extract_answer``.

It only translates: validate the request (``_limits``), grade off the event loop, count. Grading
runs in the loop's default thread pool: the rules cost time linear in the reply, and the limits cap
a reply at 1 MiB (under 1 s of CPU measured on the most hostile shapes, docs/performance.md), so
no reply can hold a thread for long and there is nothing to kill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple

import grpc

from anesbench import metrics
from anesbench.grader._limits import check_batch_size, check_item, where
from anesbench.grading import METHODS, extract_answer
from anesbench.serving import rpc
from anesbench.v1 import grader_pb2, grader_pb2_grpc

GRADER_SERVICE = grader_pb2.DESCRIPTOR.services_by_name["Grader"].full_name

Item = tuple[dict[str, str], str, str | None]  # choices, response, finish_reason


class Graded(NamedTuple):
    pred: str | None
    method: str
    seconds: float  # time the extractor took for this item


def grade_items(items: Sequence[Item]) -> list[Graded]:
    """Grade a batch (blocking: runs in a thread), timing each item for the duration histogram."""
    graded = []
    for choices, response, finish_reason in items:
        started = time.perf_counter()
        extraction = extract_answer(choices, response, finish_reason=finish_reason)
        graded.append(Graded(extraction.pred, extraction.method, time.perf_counter() - started))
    return graded


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
    clients move to another replica.
    """

    def __init__(self, *, draining: asyncio.Event | None = None) -> None:
        self._draining = draining or asyncio.Event()

    @rpc(observe=observe)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        at = where(None, request.id)
        _check(request, at=at)
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
                check_batch_size(len(batch.items), batch=number)
                for index, item in enumerate(batch.items):
                    _check(item, at=where(index, item.id, batch=number))
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
        items = [as_item(request) for request in requests]
        graded = await asyncio.get_running_loop().run_in_executor(None, grade_items, items)
        return [_response(request.id, result) for request, result in zip(requests, graded, strict=True)]


def _response(request_id: str, graded: Graded) -> grader_pb2.GradeResponse:
    metrics.GRADER_DURATION.observe(graded.seconds)
    metrics.GRADER_ITEMS.labels(graded.method).inc()
    return grader_pb2.GradeResponse(id=request_id, pred=graded.pred or "", method=graded.method)


def _check(item: grader_pb2.GradeRequest, *, at: str) -> None:
    check_item(item.choices, item.response, item.finish_reason, item.id, at=at)
