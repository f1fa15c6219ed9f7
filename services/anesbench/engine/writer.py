"""Batches result rows and writes them to the store as they arrive (size- or time-triggered)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from anesbench import metrics
from anesbench.store.async_store import AsyncStore
from anesbench.store.records import ResultRow


class ResultWriter:
    """``add`` is cheap and synchronous; a background task flushes every ``interval`` or ``batch_size`` rows."""

    def __init__(self, store: AsyncStore, *, batch_size: int = 2048, interval: float = 0.2) -> None:
        self._store = store
        self._batch_size = batch_size
        self._interval = interval
        self._pending: list[ResultRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="result-writer")

    def add(self, row: ResultRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending, []
                started = time.perf_counter()
                # shielded: a cancelled caller must not drop a batch that left the list
                await asyncio.shield(self._store.call(self._store.store.write_results, batch))
                metrics.STORE_FLUSH.observe(time.perf_counter() - started)
                metrics.STORE_ROWS.inc(len(batch))

    async def _loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.flush()

    async def close(self) -> None:
        """Stop the background task after it has written everything still pending."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
