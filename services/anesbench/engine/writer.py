"""Batches result rows and writes them to the store as they arrive (size- or time-triggered).

A row waits at most FLUSH_INTERVAL (0.1 s) plus one write before it is durable, so a ``kill -9``
costs at most the requests in flight and that much of answers. Rows still go in bulk (one Arrow
write per batch). When a write fails the writer stops writing, keeps the rows it could not write,
and tells the run through ``on_error`` so that it stops sending at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from anesbench import metrics
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import ResultRow

log = logging.getLogger(__name__)
FLUSH_INTERVAL = 0.1
BATCH_SIZE = 2048  # rows that wake the writer before its interval is up


class ResultWriter:
    """``add`` is cheap and synchronous; a background task, started at once, flushes every FLUSH_INTERVAL or
    BATCH_SIZE rows, and tells ``on_error`` of the first failed write."""

    def __init__(self, store: AsyncStore, on_error: Callable[[BaseException], None]) -> None:
        self._store = store
        self._on_error = on_error
        self._pending: list[ResultRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self.error: BaseException | None = None  # the first failed write; nothing is written after it
        self._task = asyncio.create_task(self._loop(), name="result-writer")

    @property
    def unwritten(self) -> int:
        return len(self._pending)

    def add(self, row: ResultRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= BATCH_SIZE:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending and self.error is None:
                batch, self._pending = self._pending, []
                started = time.perf_counter()
                try:
                    # shielded: a cancelled caller must not drop a batch that left the list
                    await asyncio.shield(self._store.call(Store.write_results, batch))
                except Exception as exc:  # duckdb.Error, OSError (disk full, read-only file): the store is the truth
                    self._pending[:0] = batch
                    self.error = exc
                    log.info("writing results failed (%d rows not written): %s", len(self._pending), exc)
                    self._on_error(exc)
                    return
                metrics.STORE_FLUSH.observe(time.perf_counter() - started)
                metrics.STORE_ROWS.inc(len(batch))

    async def _loop(self) -> None:
        last = time.monotonic()
        while not self._closing and self.error is None:
            # The deadline counts from the last write's start: a slow write does not stretch the next wait.
            timeout = max(0.0, FLUSH_INTERVAL - (time.monotonic() - last))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            last = time.monotonic()
            await self.flush()

    async def close(self) -> None:
        """Stop the background task after it has written everything still pending (or failed to)."""
        self._closing = True
        self._wake.set()
        await self._task
        await self.flush()
