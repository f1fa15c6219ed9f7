"""Grading in worker processes that can be killed: the grader's defence against pathological replies.

A reply that makes the extractor's regular expressions go quadratic could hold a thread for minutes,
and a thread cannot be stopped. A worker process can: every batch gets a deadline that grows with its
size, and a worker that misses it is killed and replaced, so one hostile reply costs seconds, not a
replica. Processes also let several batches use several cores despite the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import NamedTuple

from anesbench.errors import GradingTimeout
from anesbench.grading import extract_answer

log = logging.getLogger(__name__)

Item = tuple[dict[str, str], str, str | None]  # choices, response, finish_reason


class Graded(NamedTuple):
    pred: str | None
    method: str
    seconds: float  # time the extractor took for this item


def deadline_for(items: Sequence[Item]) -> float:
    """Seconds a batch may take: generous for real replies (~1 ms each, ~0.5 s per MiB at worst)."""
    size = sum(len(response) + sum(map(len, choices.values())) for choices, response, _ in items)
    return 2.0 + 0.005 * len(items) + 1.0 * size / (1 << 20)


def grade_items(items: Sequence[Item]) -> list[Graded]:
    """The work itself, the same in a worker process and in a thread."""
    graded = []
    for choices, response, finish_reason in items:
        started = time.perf_counter()
        extraction = extract_answer(choices, response, finish_reason=finish_reason)
        graded.append(Graded(extraction.pred, extraction.method, time.perf_counter() - started))
    return graded


def _work(conn: Connection) -> None:
    """Worker process main loop: one batch in, its grades out, until the grader closes the pipe."""
    with contextlib.suppress(EOFError, KeyboardInterrupt, BrokenPipeError):
        while True:
            conn.send(grade_items(conn.recv()))


class _Worker:
    def __init__(self, context: SpawnContext) -> None:
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=_work, args=(child,), name="anesbench-grade", daemon=True)
        self.process.start()
        child.close()  # so the worker sees EOF when we close ours, or die

    def exchange(self, items: Sequence[Item]) -> list[Graded]:
        """Blocking: runs in a thread. Raises EOFError/OSError if the worker dies meanwhile."""
        self.conn.send(list(items))
        result: list[Graded] = self.conn.recv()
        return result

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self, timeout: float) -> None:
        self.conn.close()  # EOF: the worker leaves its loop
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()


class GradingPool:
    """``size`` worker processes, each grading one batch at a time."""

    def __init__(self, size: int) -> None:
        # spawn, not fork: forking a process that runs gRPC threads is unsafe.
        self._context = multiprocessing.get_context("spawn")
        self._size = size
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()

    async def start(self) -> None:
        """Start the workers and have each grade one reply, so imports are paid before SERVING."""
        workers = await asyncio.gather(*(asyncio.to_thread(self._spawn) for _ in range(self._size)))
        warm_up: Sequence[Item] = [({"A": "yes", "B": "no"}, "The answer is A.", "stop")]
        await asyncio.gather(*(asyncio.to_thread(worker.exchange, warm_up) for worker in workers))
        for worker in workers:
            self._idle.put_nowait(worker)

    async def grade(self, items: Sequence[Item]) -> list[Graded]:
        deadline = deadline_for(items)
        worker = await self._idle.get()
        try:
            return await asyncio.wait_for(asyncio.to_thread(worker.exchange, items), deadline)
        except BaseException as exc:
            # Timed out, cancelled mid-batch or died: its pipe may hold half a message, so replace it.
            self._all.discard(worker)
            worker.kill()
            worker = self._spawn()
            if isinstance(exc, TimeoutError):
                log.warning("killed a grading worker: a batch of %d took over %.1f s", len(items), deadline)
                raise GradingTimeout(deadline) from None
            if isinstance(exc, (EOFError, OSError)):
                raise RuntimeError(f"grading worker died: {exc!r}") from exc
            raise
        finally:
            self._idle.put_nowait(worker)

    async def close(self, timeout: float = 5.0) -> None:
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(asyncio.to_thread(worker.stop, timeout) for worker in workers))

    def _spawn(self) -> _Worker:
        worker = _Worker(self._context)
        self._all.add(worker)
        return worker
