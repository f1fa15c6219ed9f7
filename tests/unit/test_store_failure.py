"""A store that cannot write stops the run from sending at once: after the failed write, only the
requests already on their way reach the model server.

The engine runs in-process against the stand-in server on a loopback port. The failed write notes
how many requests had reached the stand-in when it failed; the stand-in serves each request for
20 ms, far longer than the few loop steps the engine needs to learn of the failure, so no slot
freed in between can carry a new request before the run has halted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import duckdb
import pytest

from anesbench.dataset import load_dataset
from anesbench.engine.config import RunConfig
from anesbench.engine.runner import execute_run
from anesbench.grader.local import LocalGrader
from anesbench.prompts import load_template
from anesbench.store import ResultRow, Store
from anesbench.store.async_store import AsyncStore
from anesbench_testkit.standin.faults import FaultPlan
from anesbench_testkit.standin.server import StandinServer, start
from tests.conftest import make_records

CONCURRENCY = 8
ITEMS = 400


class FullDisk(Store):
    """A real store whose third batch of results fails as a full disk would, noting the requests sent by then."""

    def __init__(self, path: Path, server: StandinServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(path)
        self.server, self.loop = server, loop
        self.batches = 0
        self.requests_at_failure: int | None = None

    def write_results(self, rows: Sequence[ResultRow]) -> None:
        self.batches += 1
        if self.batches < 3:
            super().write_results(rows)
            return
        if self.requests_at_failure is None:
            # Queued on the loop before the failure itself reaches it: counted just before the engine can know.
            self.loop.call_soon_threadsafe(self._note)
        raise duckdb.IOException('Could not write file "r.duckdb.wal": File too large')

    def _note(self) -> None:
        self.requests_at_failure = self.server.stats.requests


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandinServer, str]]:
    plan = FaultPlan()
    plan.update({"latency_ms": 20.0})
    server = StandinServer(plan)
    runner, port = await start(server, "127.0.0.1", 0)
    yield server, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_a_failed_write_stops_new_requests_at_once(
    standin: tuple[StandinServer, str], write_jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    server, url = standin
    disk = FullDisk(tmp_path / "r.duckdb", server, asyncio.get_running_loop())
    store = AsyncStore(disk)
    try:
        config = RunConfig(model="standin", endpoints=(url,), languages=("en",), concurrency=CONCURRENCY,
                           max_attempts=1)
        run = await execute_run(config, load_dataset(write_jsonl(make_records(ITEMS)), ("en",)), load_template(None),
                                store, LocalGrader())
    finally:
        await store.close()
    assert run.status == "failed" and run.error is not None and "the result store cannot write" in run.error
    assert disk.requests_at_failure is not None
    assert disk.requests_at_failure < ITEMS
    assert server.stats.requests - disk.requests_at_failure <= CONCURRENCY
