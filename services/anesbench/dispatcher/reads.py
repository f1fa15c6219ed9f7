"""What clients read about runs: one run, the list, the leaderboard, export pages, a progress stream.

Active runs are answered from memory (their progress so far), the rest from the store; nothing here
changes a run.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from anesbench.dispatcher.active import ActiveRuns
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore
from anesbench.store.leaderboard_sql import LeaderboardRow

WATCH_INTERVAL = 0.1


class RunReads:
    def __init__(self, store: AsyncStore, runs: ActiveRuns) -> None:
        self._store = store
        self._runs = runs

    async def get(self, run_id: str) -> RunRecord:
        return await self._runs.current(run_id)

    async def list(self) -> builtins.list[RunRecord]:
        return [self._runs.live(run.id) or run for run in await self._store.list_runs()]

    async def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool) -> builtins.list[LeaderboardRow]:
        return await self._store.leaderboard(run_ids, include_incomplete)

    async def export_pages(self, run_id: str, page_size: int = 5000) -> AsyncIterator[builtins.list[tuple[Any, ...]]]:
        """A run's export rows page by page (one store call per page, so writers are never held up long)."""
        await self._store.get_run(run_id)
        after: tuple[str, str, int] | None = None
        while True:
            page = await self._store.export_page(run_id, after, page_size)
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            last = page[-1]
            after = (last[0], last[1], last[3])

    async def watch(self, run_id: str) -> AsyncIterator[tuple[RunRecord, float]]:
        """Progress snapshots while the run is active (≤ 10/s, only on change), then the final record."""
        active = self._runs.get(run_id)
        if active is None:
            yield await self.get(run_id), 0.0
            return
        await active.started.wait()
        last: tuple[int, int, str] | None = None
        while not active.finished.is_set():
            snap = active.snapshot()
            if snap is not None and (snap.done, snap.failed, snap.status) != last:
                last = (snap.done, snap.failed, snap.status)
                yield snap, active.rate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.finished.wait(), WATCH_INTERVAL)
        final = await self._store.get_run(run_id)
        yield final, active.rate()
