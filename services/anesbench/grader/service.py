"""GraderServicer: the gRPC adapter over ``anesbench.grading.extract_answer``.

It only translates: validate the request (``_limits``), grade off the event loop, count. Grading
runs in worker threads so that a batch of long replies cannot starve health checks, keepalive
handling or other streams on the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import Executor

import grpc

from anesbench import metrics
from anesbench.grader._limits import check_batch_size, check_item, where
from anesbench.grading import METHODS, extract_answer
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


def grade_all(items: Iterable[grader_pb2.GradeRequest]) -> list[grader_pb2.GradeResponse]:
    """Grade validated requests, in order (runs in a worker thread)."""
    results = []
    for item in items:
        started = time.perf_counter()
        # Protobuf maps have no order; hand the library the options in letter order, as a dataset would.
        choices = dict(sorted(item.choices.items()))
        extraction = extract_answer(choices, item.response, finish_reason=item.finish_reason or None)
        metrics.GRADER_DURATION.observe(time.perf_counter() - started)
        metrics.GRADER_ITEMS.labels(extraction.method).inc()
        results.append(
            grader_pb2.GradeResponse(id=item.id, pred=extraction.pred or "", method=extraction.method)
        )
    return results


class GraderServicer(grader_pb2_grpc.GraderServicer):
    """Serves anesbench.v1.Grader.

    ``draining``, when set, makes open GradeStreams answer the batch in hand and end with OK so their
    clients move to another replica; ``executor`` runs the grading (None: the loop's default).
    """

    def __init__(self, *, draining: asyncio.Event | None = None, executor: Executor | None = None) -> None:
        self._draining = draining or asyncio.Event()
        self._executor = executor

    @rpc(observe=observe)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        _check(request, at=where(None, request.id))
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
                yield grader_pb2.GradeBatchResult(results=await self._grade(batch.items))
                number += 1
        finally:
            metrics.GRADER_STREAMS.dec()

    async def _next_batch(
        self, batches: AsyncIterator[grader_pb2.GradeBatch]
    ) -> grader_pb2.GradeBatch | None:
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

    async def warm_up(self) -> None:
        choices = {"A": "yes", "B": "no"}
        await asyncio.get_running_loop().run_in_executor(
            self._executor, extract_answer, choices, "The answer is A."
        )

    async def _grade(self, items: Sequence[grader_pb2.GradeRequest]) -> list[grader_pb2.GradeResponse]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, grade_all, items)


def _check(item: grader_pb2.GradeRequest, *, at: str) -> None:
    check_item(item.choices, item.response, item.finish_reason, item.id, at=at)
