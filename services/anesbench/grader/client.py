"""RemoteGrader: the dispatcher's client of the grader service.

Concurrent ``grade()`` calls are coalesced into GradeBatch messages (flushed at 256 requests, 16 MiB
or 2 ms after the first one waits) on ONE long-lived GradeStream, and answers are matched back by
correlation id. If the stream breaks (replica killed, drained, network) the unanswered requests are
re-sent on a new one after a backoff; a caller gets GraderUnavailable only when its request has had
no answer for ``give_up_after`` seconds. Grading is idempotent, so a re-sent request that the dead
replica had already graded costs only CPU; each caller still gets exactly one answer.

    grader = RemoteGrader("grader:50051")
    extraction = await grader.grade({"A": "Propofol", "B": "Ketamine"}, "The answer is B.", "stop")
    await grader.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from anesbench.errors import GraderUnavailable, InvalidInput
from anesbench.grader._limits import check_item
from anesbench.grading import Extraction
from anesbench.serving import CLIENT_OPTIONS
from anesbench.v1 import grader_pb2, grader_pb2_grpc

log = logging.getLogger(__name__)

# A stream failing with these codes choked on its content, not on the network: re-sending the same
# batch would fail again, so its requests are graded one by one and only the culprit fails.
_CONTENT_CODES = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


@dataclass(slots=True)
class _Pending:
    request: grader_pb2.GradeRequest
    future: asyncio.Future[Extraction]
    size: int  # serialized bytes, to keep batches under the message limit


class RemoteGrader:
    """Grades over gRPC; satisfies :class:`anesbench.grader.Grader`. Use from one event loop."""

    def __init__(
        self,
        target: str,
        *,
        max_batch: int = 256,
        max_delay: float = 0.002,
        max_batch_bytes: int = 16 << 20,
        give_up_after: float = 30.0,
        stall_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.05, 2.0),
        channel_options: Sequence[tuple[str, int]] = CLIENT_OPTIONS,
    ) -> None:
        self.target = target
        self._max_batch, self._max_delay, self._max_batch_bytes = max_batch, max_delay, max_batch_bytes
        self._give_up_after, self._stall_timeout, self._backoff = give_up_after, stall_timeout, backoff
        self._channel_options = tuple(channel_options)
        self._ids = itertools.count()
        self._pending: dict[str, _Pending] = {}  # every request without an answer yet
        self._outbox: deque[str] = deque()  # ids waiting to be written to a stream
        self._inflight: dict[str, None] = {}  # ids written to the current stream (ordered set)
        self._has_work = asyncio.Event()  # outbox is not empty
        self._batch_full = asyncio.Event()  # outbox holds a full batch: flush without waiting
        self._last_progress = 0.0
        self._last_error = "not connected yet"
        self._channel: grpc.aio.Channel | None = None
        self._stub: grader_pb2_grpc.GraderStub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> RemoteGrader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def grade(
        self, choices: Mapping[str, str], response: str, finish_reason: str | None = None
    ) -> Extraction:
        """Grade one reply; raises InvalidInput (bad request) or GraderUnavailable (no answer in time)."""
        if self._closed:
            raise GraderUnavailable(f"grader client for {self.target} is closed")
        check_item(choices, response, finish_reason or "", "", at="grade request")
        request_id = format(next(self._ids), "x")
        request = grader_pb2.GradeRequest(
            id=request_id, choices=choices, response=response, finish_reason=finish_reason or ""
        )
        future: asyncio.Future[Extraction] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(request, future, request.ByteSize())
        self._enqueue([request_id])
        self._start()
        try:
            return await asyncio.wait_for(future, self._give_up_after)
        except TimeoutError:
            raise GraderUnavailable(
                f"grader at {self.target} did not answer within {self._give_up_after:g} s "
                f"(last error: {self._last_error})"
            ) from None
        finally:
            # Answered, failed, timed out or cancelled by the caller: never send it (again).
            self._pending.pop(request_id, None)

    async def close(self) -> None:
        """Stop the stream; calls still waiting fail with GraderUnavailable."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._fail_all(GraderUnavailable(f"grader client for {self.target} was closed"))
        if self._channel is not None:
            await self._channel.close()

    # --- connection supervisor --------------------------------------------------------------------

    def _start(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._channel_options)
            self._stub = grader_pb2_grpc.GraderStub(self._channel)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name=f"RemoteGrader({self.target})")

    async def _supervise(self) -> None:
        failures = 0
        try:
            while True:
                await self._has_work.wait()
                code, details, answered = await self._run_stream()
                unanswered = self._take_inflight()
                # OK here means a draining replica closed the stream: reconnect (elsewhere) and re-send.
                ok = code is grpc.StatusCode.OK
                self._last_error = "stream closed by the server" if ok else f"{code.name}: {details}"
                if code in _CONTENT_CODES:
                    log.warning("grade stream to %s failed (%s); grading its batch one by one", self.target, code.name)
                    await self._grade_singly(unanswered)
                    continue
                self._enqueue(unanswered, front=True)
                failures = 0 if answered else failures + 1
                low, high = self._backoff
                delay = 0.0 if failures == 0 else random.uniform(0.5, 1.0) * min(high, low * 2 ** (failures - 1))
                log.log(
                    logging.DEBUG if ok else logging.INFO,
                    "grade stream to %s ended (%s); re-sending %d unanswered after %.2f s",
                    self.target, self._last_error, len(unanswered), delay,
                )
                await asyncio.sleep(delay)
        except Exception as exc:
            # A bug here must not leave callers waiting for give_up_after; the next grade() restarts us.
            log.exception("RemoteGrader supervisor crashed")
            self._fail_all(GraderUnavailable(f"grader client for {self.target} failed: {exc!r}"))

    async def _run_stream(self) -> tuple[grpc.StatusCode, str, bool]:
        """Run one GradeStream until it ends; returns its status code, details and whether it answered."""
        assert self._stub is not None
        call = self._stub.GradeStream(wait_for_ready=True)
        stalled = asyncio.Event()
        helpers = [asyncio.create_task(self._write(call)), asyncio.create_task(self._watch(call, stalled))]
        answered = False
        try:
            async for result in call:
                answered = True
                self._resolve(result.results)
            return grpc.StatusCode.OK, "", answered
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or "", answered
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if stalled.is_set() and current is not None and not current.cancelling():
                return grpc.StatusCode.DEADLINE_EXCEEDED, "no answer on the stream", answered
            raise
        finally:
            call.cancel()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            await self._has_work.wait()
            if len(self._outbox) < self._max_batch:
                # Linger briefly so that concurrent callers share one message.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), self._max_delay)
            batch = self._take_batch()
            if batch:
                if not self._inflight:
                    self._last_progress = asyncio.get_running_loop().time()
                self._inflight.update(dict.fromkeys(item.id for item in batch))
                await call.write(grader_pb2.GradeBatch(items=batch))

    async def _watch(self, call: grpc.aio.StreamStreamCall, stalled: asyncio.Event) -> None:
        """Abandon a stream that has requests in flight but answers nothing (a wedged replica)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._stall_timeout / 4)
            if self._inflight and loop.time() - self._last_progress > self._stall_timeout:
                stalled.set()
                call.cancel()
                return

    # --- bookkeeping ----------------------------------------------------------------------------

    def _enqueue(self, ids: Sequence[str], *, front: bool = False) -> None:
        if front:
            self._outbox.extendleft(reversed(ids))
        else:
            self._outbox.extend(ids)
        if self._outbox:
            self._has_work.set()
        if len(self._outbox) >= self._max_batch:
            self._batch_full.set()

    def _take_batch(self) -> list[grader_pb2.GradeRequest]:
        batch: list[grader_pb2.GradeRequest] = []
        size = 0
        while self._outbox and len(batch) < self._max_batch:
            entry = self._pending.get(self._outbox[0])
            if entry is not None and batch and size + entry.size > self._max_batch_bytes:
                break
            self._outbox.popleft()
            if entry is not None:  # else the caller gave up or was cancelled meanwhile
                batch.append(entry.request)
                size += entry.size
        if not self._outbox:
            self._has_work.clear()
        if len(self._outbox) < self._max_batch:
            self._batch_full.clear()
        return batch

    def _take_inflight(self) -> list[str]:
        ids = [request_id for request_id in self._inflight if request_id in self._pending]
        self._inflight.clear()
        return ids

    def _resolve(self, results: Sequence[grader_pb2.GradeResponse]) -> None:
        self._last_progress = asyncio.get_running_loop().time()
        for result in results:
            self._inflight.pop(result.id, None)
            entry = self._pending.get(result.id)
            if entry is not None and not entry.future.done():
                entry.future.set_result(Extraction(pred=result.pred or None, method=result.method))

    async def _grade_singly(self, ids: Sequence[str]) -> None:
        await asyncio.gather(*(self._grade_one(request_id) for request_id in ids))

    async def _grade_one(self, request_id: str) -> None:
        entry = self._pending.get(request_id)
        if entry is None or self._stub is None:
            return
        try:
            result = await self._stub.Grade(entry.request, timeout=self._stall_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                _fail(entry, InvalidInput(exc.details() or "the grader rejected the request"))
            elif exc.code() in _CONTENT_CODES:
                _fail(entry, GraderUnavailable(f"the grader failed on this reply: {exc.code().name}: {exc.details()}"))
            else:
                self._enqueue([request_id], front=True)  # a network problem after all: back to the stream
            return
        self._resolve([result])

    def _fail_all(self, error: Exception) -> None:
        for entry in self._pending.values():
            _fail(entry, error)
        self._outbox.clear()
        self._inflight.clear()
        self._has_work.clear()


def _fail(entry: _Pending, error: Exception) -> None:
    if not entry.future.done():
        entry.future.set_exception(error)
