"""RemoteGrader: the dispatcher's client of the grader service; MultiConnectionGrader: several of them.

Concurrent ``grade()`` calls are coalesced into GradeBatch messages (flushed at 256 requests, 4 MiB
or 2 ms after the first one waits) on ONE long-lived GradeStream, and answers are matched back by
correlation id. If the stream breaks (replica killed, drained, network) the unanswered requests are
re-sent on a new one after a backoff; a caller gets GraderUnavailable only when its request has had
no answer for ``give_up_after`` seconds. Grading is idempotent, so a re-sent request that the dead
replica had already graded costs only CPU; each caller still gets exactly one answer. A batch the
server refuses as a whole (a reply too costly to grade, a stricter server) is re-sent one request
at a time, so only the culprit's caller gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Self

import grpc
from tenacity import AsyncRetrying, retry_if_result, stop_never, wait_random_exponential

from anesbench import metrics
from anesbench.errors import GraderUnavailable, InvalidInput, Ungradable
from anesbench.grader.local import check_item
from anesbench.grading import Extraction
from anesbench.serving import CLIENT_OPTIONS
from anesbench.serving.security import ClientTls, open_channel, token_metadata
from anesbench.v1 import grader_pb2, grader_pb2_grpc

log = logging.getLogger(__name__)

MAX_BATCH = 256  # requests per GradeBatch message
BACKOFF = (0.05, 2.0)  # seconds: first and longest wait before reconnecting a stream that answered nothing
# A stream failing with these codes choked on its content, not on the network: re-sending the same
# batch would fail again, so its requests are graded one by one and only the culprit fails.
_CONTENT_CODES = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
BURST = 64


class RequestQueue:
    """Which requests still need an answer and which go in the next batch.

    Every request stays in ``pending`` until its caller has an answer, an error or gave up. It sits in the
    outbox until written to a stream, then in flight until answered; when a stream breaks, its in-flight
    requests go back to the front of the outbox, so they are re-sent first.
    """

    def __init__(self, *, max_batch: int, max_batch_bytes: int) -> None:
        self.max_batch, self.max_batch_bytes = max_batch, max_batch_bytes
        self.pending: dict[str, tuple[grader_pb2.GradeRequest, asyncio.Future[Extraction]]] = {}
        self._outbox: deque[str] = deque()
        self._inflight: dict[str, None] = {}  # an ordered set
        self.has_work = asyncio.Event()  # the outbox is not empty
        self.batch_full = asyncio.Event()  # the outbox holds a full batch: send without lingering
        self.last_progress = 0.0  # loop time of the last answer, or of the first send after a lull

    def add(self, request: grader_pb2.GradeRequest) -> asyncio.Future[Extraction]:
        future: asyncio.Future[Extraction] = asyncio.get_running_loop().create_future()
        self.pending[request.id] = (request, future)
        self.enqueue([request.id])
        return future

    def take_batch(self) -> list[grader_pb2.GradeRequest]:
        """The next batch to write, now counted as in flight."""
        batch: list[grader_pb2.GradeRequest] = []
        size = 0
        while self._outbox and len(batch) < self.max_batch:
            entry = self.pending.get(self._outbox[0])
            cost = entry[0].ByteSize() if entry is not None else 0  # serialized bytes, under the message limit
            if batch and cost and size + cost > self.max_batch_bytes:  # a gone caller never splits a batch
                break
            self._outbox.popleft()
            if entry is not None:  # else its caller is gone
                batch.append(entry[0])
                size += cost
        if not self._outbox:
            self.has_work.clear()
        if len(self._outbox) < self.max_batch:
            self.batch_full.clear()
        if batch and not self._inflight:
            self.last_progress = asyncio.get_running_loop().time()
        self._inflight.update(dict.fromkeys(item.id for item in batch))
        return batch

    def take_inflight(self) -> list[str]:
        """Forget what was in flight on a stream that ended; returns the ids still unanswered."""
        ids = [request_id for request_id in self._inflight if request_id in self.pending]
        self._inflight.clear()
        return ids

    def stalled(self, timeout: float) -> bool:
        return bool(self._inflight) and asyncio.get_running_loop().time() - self.last_progress > timeout

    def resolve(self, results: Sequence[grader_pb2.GradeResponse]) -> None:
        self.last_progress = asyncio.get_running_loop().time()
        for result in results:
            self._inflight.pop(result.id, None)
            entry = self.pending.get(result.id)
            if entry is not None and not entry[1].done():
                entry[1].set_result(Extraction(pred=result.pred or None, method=result.method))

    def fail(self, request_id: str, error: Exception) -> None:
        entry = self.pending.get(request_id)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(error)

    def fail_all(self, error: Exception) -> None:
        for request_id in list(self.pending):
            self.fail(request_id, error)
        self._outbox.clear()
        self._inflight.clear()
        self.has_work.clear()
        self.batch_full.clear()

    def enqueue(self, ids: Sequence[str], *, front: bool = False) -> None:
        """Put ``ids`` in the outbox: at the front for requests a broken stream left unanswered."""
        if front:
            self._outbox.extendleft(reversed(ids))
        else:
            self._outbox.extend(ids)
        if self._outbox:
            self.has_work.set()
        if len(self._outbox) >= self.max_batch:
            self.batch_full.set()


class RemoteGrader:
    """Grades over gRPC; satisfies :class:`anesbench.grader.Grader`. Use from one event loop."""

    def __init__(
        self,
        target: str,
        *,
        max_delay: float = 0.002,
        max_batch_bytes: int = 4 << 20,
        give_up_after: float = 30.0,
        stall_timeout: float = 10.0,
        channel_options: Sequence[tuple[str, int]] = CLIENT_OPTIONS,
        tls: ClientTls | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target
        self._tls, self._metadata = tls, token_metadata(token)
        self._max_delay, self._give_up_after = max_delay, give_up_after
        self._stall_timeout = stall_timeout
        self._channel_options = tuple(channel_options)
        self._ids = itertools.count()
        self._queue = RequestQueue(max_batch=MAX_BATCH, max_batch_bytes=max_batch_bytes)
        self._last_error = "not connected yet"
        self._channel: grpc.aio.Channel | None = None
        self._stub: grader_pb2_grpc.GraderStub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None = None) -> Extraction:
        """Grade one reply; raises InvalidInput (bad request) or GraderUnavailable (no answer in time)."""
        if self._closed:
            raise GraderUnavailable(f"grader client for {self.target} is closed")
        check_item(choices, response, finish_reason or "", "", at="grade request")
        request_id = format(next(self._ids), "x")
        future = self._queue.add(grader_pb2.GradeRequest(
            id=request_id, choices=choices, response=response, finish_reason=finish_reason or ""))
        self._start()
        try:
            async with asyncio.timeout(self._give_up_after):  # cheaper than wait_for on Python 3.11
                return await future
        except TimeoutError:
            raise GraderUnavailable(
                f"grader at {self.target} did not answer within {self._give_up_after:g} s "
                f"(last error: {self._last_error})"
            ) from None
        finally:  # answered, failed, gave up or cancelled: never send it again
            self._queue.pending.pop(request_id, None)

    async def close(self) -> None:
        """Stop the stream; calls still waiting fail with GraderUnavailable."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._queue.fail_all(GraderUnavailable(f"grader client for {self.target} was closed"))
        if self._channel is not None:
            await self._channel.close()

    # --- connection supervisor --------------------------------------------------------------------

    def _start(self) -> None:
        if self._channel is None:
            self._channel = open_channel(self.target, self._channel_options, self._tls)
            self._stub = grader_pb2_grpc.GraderStub(self._channel)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name=f"RemoteGrader({self.target})")

    async def _supervise(self) -> None:
        # Streams that end without answering anything are reconnected with backoff and jitter (tenacity,
        # as for HTTP); one that answered something starts the count again at once.
        reconnect = AsyncRetrying(retry=retry_if_result(lambda answered: answered is False),
                                  wait=wait_random_exponential(multiplier=BACKOFF[0], max=BACKOFF[1]), stop=stop_never)
        try:
            while True:
                await reconnect(self._session)
        except Exception as exc:
            # A bug here must not leave callers waiting for give_up_after; the next grade() restarts us.
            log.exception("RemoteGrader supervisor crashed")
            self._queue.fail_all(GraderUnavailable(f"grader client for {self.target} failed: {exc!r}"))

    async def _session(self) -> bool | None:
        """One stream; True/False: whether it answered anything; None: its batch was graded one by one."""
        await self._queue.has_work.wait()
        code, details, answered = await self._run_stream()
        unanswered = self._queue.take_inflight()
        # OK here means a draining replica closed the stream: reconnect (elsewhere) and re-send.
        ok = code is grpc.StatusCode.OK
        self._last_error = "stream closed by the server" if ok else f"{code.name}: {details}"
        if code in _CONTENT_CODES:
            log.warning("grade stream to %s failed (%s); grading its batch one by one", self.target, code.name)
            await asyncio.gather(*(self._grade_one(request_id) for request_id in unanswered))
            return None
        self._queue.enqueue(unanswered, front=True)
        log.log(logging.DEBUG if ok else logging.INFO, "grade stream to %s ended (%s); re-sending %d unanswered",
                self.target, self._last_error, len(unanswered))
        return answered

    async def _run_stream(self) -> tuple[grpc.StatusCode, str, bool]:
        """Run one GradeStream until it ends; returns its status code, details and whether it answered."""
        assert self._stub is not None
        call = self._stub.GradeStream(wait_for_ready=True, metadata=self._metadata)
        abandoned: list[str] = []  # why we cancelled the call ourselves, if we did

        def abandon(reason: str) -> None:
            abandoned.append(reason)
            call.cancel()

        writer = asyncio.create_task(self._write(call, abandon))
        watchdog = asyncio.create_task(self._watch(abandon))
        answered = False
        try:
            async for result in call:
                answered = True
                self._queue.resolve(result.results)
            return grpc.StatusCode.OK, "", answered
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or "", answered
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if abandoned and current is not None and not current.cancelling():
                return grpc.StatusCode.CANCELLED, abandoned[0], answered
            raise
        finally:
            call.cancel()
            for helper in (writer, watchdog):
                helper.cancel()
            await asyncio.gather(writer, watchdog, return_exceptions=True)

    async def _write(self, call: grpc.aio.StreamStreamCall, abandon: Callable[[str], None]) -> None:
        queue = self._queue
        try:
            while True:
                await queue.has_work.wait()
                if not queue.batch_full.is_set():
                    # Linger briefly so that concurrent callers share one message.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(queue.batch_full.wait(), self._max_delay)
                batch = queue.take_batch()
                if batch:
                    await call.write(grader_pb2.GradeBatch(items=batch))
        except Exception as exc:  # without its writer the stream is useless
            abandon(f"write failed: {exc!r}")

    async def _watch(self, abandon: Callable[[str], None]) -> None:
        """Abandon a stream that has requests in flight but answers nothing (a wedged replica)."""
        while True:
            await asyncio.sleep(self._stall_timeout / 4)
            if self._queue.stalled(self._stall_timeout):
                abandon(f"no answer on the stream for {self._stall_timeout:g} s")
                return

    # --- isolating a bad request -----------------------------------------------------------------

    async def _grade_one(self, request_id: str) -> None:
        entry = self._queue.pending.get(request_id)
        if entry is None or self._stub is None:
            return
        try:
            result = await self._stub.Grade(entry[0], timeout=self._stall_timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                self._queue.fail(request_id, InvalidInput(exc.details() or "the grader rejected the request"))
            elif exc.code() in _CONTENT_CODES:
                error = Ungradable(f"the grader failed on this reply: {exc.code().name}: {exc.details()}")
                self._queue.fail(request_id, error)
            else:
                self._queue.enqueue([request_id], front=True)  # a network problem after all: back to the stream
            return
        self._queue.resolve([result])


class MultiConnectionGrader:
    """Several RemoteGraders on separate connections, so that grader replicas share the work.

    One gRPC connection carries one long-lived GradeStream, and a Kubernetes Service balances
    connections, not messages: with a single connection every batch would reach the same grader pod
    however many replicas run. Each RemoteGrader here gets its own connection (a local subchannel
    pool, so gRPC does not share one TCP connection between them), and calls are spread round-robin
    in runs of ``BURST``. Satisfies :class:`anesbench.grader.Grader`.
    """

    def __init__(self, target: str, connections: int = 4, *, give_up_after: float = 30.0,
                 tls: ClientTls | None = None, token: str | None = None) -> None:
        self.graders = [
            RemoteGrader(target, channel_options=(*CLIENT_OPTIONS, ("grpc.use_local_subchannel_pool", 1)),
                         give_up_after=give_up_after, tls=tls, token=token)
            for _ in range(max(1, connections))
        ]
        # Runs of BURST calls per connection rather than one each: concurrent calls then share one
        # GradeBatch message (a gRPC write costs ~0.5 ms whatever its size) and replicas still share the work.
        self._next = itertools.cycle([grader for grader in self.graders for _ in range(BURST)])

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None = None) -> Extraction:
        with metrics.GRADE_QUEUE_DEPTH.track_inprogress():
            return await next(self._next).grade(choices, response, finish_reason)

    async def close(self) -> None:
        await asyncio.gather(*(grader.close() for grader in self.graders))
