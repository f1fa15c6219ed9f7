"""Async access to a :class:`Store`: every call runs on one dedicated thread, never on the event loop.

Each method is the :class:`Store` method of the same name, awaited; DuckDB connections are not
thread-safe, so one worker thread owns the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from anesbench.store.database import HISTORY_RUNS, Store
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import ResultRow, RunRecord

Params = ParamSpec("Params")
Result = TypeVar("Result")


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self._sync = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")

    async def _run(self, fn: Callable[Params, Result], *args: Params.args, **kwargs: Params.kwargs) -> Result:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    async def close(self) -> None:
        await self._run(self._sync.close)
        self._thread.shutdown(wait=True)

    # runs
    async def get_run(self, run_id: str) -> RunRecord:
        return await self._run(self._sync.get_run, run_id)

    async def find_run(self, run_id: str) -> RunRecord | None:
        return await self._run(self._sync.find_run, run_id)

    async def list_runs(self) -> list[RunRecord]:
        return await self._run(self._sync.list_runs)

    async def begin_run(self, run: RunRecord) -> RunRecord:
        return await self._run(self._sync.begin_run, run)

    async def finish_run(self, run_id: str, status: str, error: str | None = None) -> RunRecord:
        return await self._run(self._sync.finish_run, run_id, status, error)

    async def fail_abandoned(self) -> list[str]:
        return await self._run(self._sync.fail_abandoned)

    async def unfinished_runs(self) -> list[RunRecord]:
        return await self._run(self._sync.unfinished_runs)

    async def set_ordering(self, run_id: str, ordering: str) -> None:
        await self._run(self._sync.set_ordering, run_id, ordering)

    # results
    async def set_elicit_constraint(self, run_id: str, constraint: str) -> None:
        await self._run(self._sync.set_elicit_constraint, run_id, constraint)

    async def unfinished_elicitations(self, run_id: str) -> list[ResultRow]:
        return await self._run(self._sync.unfinished_elicitations, run_id)

    async def pending_elicitations(self, run_id: str) -> int:
        return await self._run(self._sync.pending_elicitations, run_id)

    async def completed_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        return await self._run(self._sync.completed_keys, run_id)

    async def write_results(self, rows: Sequence[ResultRow]) -> None:
        await self._run(self._sync.write_results, rows)

    async def reusable(self, run_id: str, request_hashes: Iterable[str]) -> dict[str, ResultRow]:
        return await self._run(self._sync.reusable, run_id, request_hashes)

    async def answered_cells(self, run_id: str) -> list[LeaderboardRow]:
        return await self._run(self._sync.answered_cells, run_id)

    async def length_history(self, dataset_sha256: str, run_id: str,
                             runs: int = HISTORY_RUNS) -> tuple[list[str], dict[tuple[str, str], float]]:
        return await self._run(self._sync.length_history, dataset_sha256, run_id, runs)

    async def leaderboard(self, run_ids: str | Sequence[str] | None = None,
                          include_incomplete: bool = False) -> list[LeaderboardRow]:
        return await self._run(self._sync.leaderboard, run_ids, include_incomplete)

    async def export_page(self, run_id: str, after: tuple[str, str, int] | None, limit: int) -> list[tuple[Any, ...]]:
        return await self._run(self._sync.export_page, run_id, after, limit)

    # the dispatcher's own records
    async def save_spec(self, run_id: str, spec: str) -> None:
        await self._run(self._sync.save_spec, run_id, spec)

    async def load_spec(self, run_id: str) -> str | None:
        return await self._run(self._sync.load_spec, run_id)

    async def save_upload(self, sha256: str, name: str, records: str) -> None:
        await self._run(self._sync.save_upload, sha256, name, records)

    async def load_upload(self, sha256: str) -> tuple[str, str] | None:
        return await self._run(self._sync.load_upload, sha256)
