"""RemoteGrader's bookkeeping: which requests still need an answer and which go in the next batch.

Every request stays in ``pending`` until its caller has an answer, an error or gave up. It sits in the
outbox until written to a stream, then in flight until answered; when a stream breaks, its in-flight
requests go back to the front of the outbox, so they are re-sent first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from anesbench.grading import Extraction
from anesbench.v1 import grader_pb2


@dataclass(slots=True)
class Pending:
    request: grader_pb2.GradeRequest
    future: asyncio.Future[Extraction]
    size: int  # serialized bytes, to keep batches under the message limit


class RequestQueue:
    def __init__(self, *, max_batch: int, max_batch_bytes: int) -> None:
        self.max_batch, self.max_batch_bytes = max_batch, max_batch_bytes
        self.pending: dict[str, Pending] = {}
        self._outbox: deque[str] = deque()
        self._inflight: dict[str, None] = {}  # an ordered set
        self.has_work = asyncio.Event()  # the outbox is not empty
        self.batch_full = asyncio.Event()  # the outbox holds a full batch: send without lingering
        self.last_progress = 0.0  # loop time of the last answer, or of the first send after a lull

    def add(self, request: grader_pb2.GradeRequest) -> asyncio.Future[Extraction]:
        future: asyncio.Future[Extraction] = asyncio.get_running_loop().create_future()
        self.pending[request.id] = Pending(request, future, request.ByteSize())
        self.enqueue([request.id])
        return future

    def forget(self, request_id: str) -> None:
        """The caller is done with it (answered, failed, gave up, cancelled): never send it again."""
        self.pending.pop(request_id, None)

    def take_batch(self) -> list[grader_pb2.GradeRequest]:
        """The next batch to write, now counted as in flight."""
        batch: list[grader_pb2.GradeRequest] = []
        size = 0
        while self._outbox and len(batch) < self.max_batch:
            entry = self.pending.get(self._outbox[0])
            if entry is not None and batch and size + entry.size > self.max_batch_bytes:
                break
            self._outbox.popleft()
            if entry is not None:  # else its caller is gone
                batch.append(entry.request)
                size += entry.size
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
        """Requests are in flight and nothing was answered for ``timeout`` seconds."""
        return bool(self._inflight) and asyncio.get_running_loop().time() - self.last_progress > timeout

    def resolve(self, results: Sequence[grader_pb2.GradeResponse]) -> None:
        self.last_progress = asyncio.get_running_loop().time()
        for result in results:
            self._inflight.pop(result.id, None)
            entry = self.pending.get(result.id)
            if entry is not None and not entry.future.done():
                entry.future.set_result(Extraction(pred=result.pred or None, method=result.method))

    def fail(self, request_id: str, error: Exception) -> None:
        entry = self.pending.get(request_id)
        if entry is not None and not entry.future.done():
            entry.future.set_exception(error)

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
