"""ResultWriter: a failed write stops writing, keeps the rows and tells the run; the progress line's text."""

from __future__ import annotations

import asyncio

import duckdb
import pytest

from anesbench.cli.run_modes import Progress
from anesbench.engine.runner import ResultWriter
from anesbench.store import Store
from anesbench.store.async_store import AsyncStore
from anesbench.store.records import ResultRow


class FailingStore(Store):
    """A real in-memory store whose writes fail from the ``fail_from``-th one on, as a full disk would."""

    def __init__(self, fail_from: int) -> None:
        super().__init__(":memory:")
        self.writes = 0
        self.fail_from = fail_from

    def write_results(self, rows):  # type: ignore[no-untyped-def]
        self.writes += 1
        if self.writes >= self.fail_from:
            raise duckdb.IOException('Could not write file "x.duckdb.wal": File too large')
        super().write_results(rows)


def _row(n: int) -> ResultRow:
    return ResultRow(run_id="r", item_id=f"q{n}", language="en", sample=0, level=1, answer="A", request_hash="h")


def test_a_failed_write_stops_the_writer_and_keeps_the_rows() -> None:
    async def scenario() -> tuple[list[BaseException], int, int, int]:
        store = FailingStore(fail_from=2)
        astore = AsyncStore(store)
        errors: list[BaseException] = []
        writer = ResultWriter(astore, on_error=errors.append)
        writer.add(_row(1))
        await writer.flush()
        writer.add(_row(2))
        writer.add(_row(3))
        await writer.flush()
        writer.add(_row(4))
        await writer.close()
        written = len(store.results("r"))
        await astore.close()
        return errors, written, writer.unwritten, store.writes

    errors, written, unwritten, writes = asyncio.run(scenario())
    assert len(errors) == 1 and "File too large" in str(errors[0])
    assert written == 1 and unwritten == 3
    assert writes == 2  # nothing was tried after the failure


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((0, 100, 0, 0), "progress: 0/100 (0.0%) 0.0 items/s ETA - accuracy - errors 0"),
        ((100, 100, 81, 2), "accuracy 0.810 errors 2"),
    ],
)
def test_progress_line_text(counts: tuple[int, int, int, int], expected: str) -> None:
    line = Progress("line", interval=30)
    line.update(*counts)
    assert expected in line.line()


def test_requests_still_in_flight_after_a_halt_are_dropped_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung server: once the run halts, in-flight requests get IN_FLIGHT_GRACE, then they are cancelled."""
    from types import SimpleNamespace

    from anesbench.engine import runner

    monkeypatch.setattr(runner, "IN_FLIGHT_GRACE", 0.0)

    async def scenario() -> list[bool]:
        state = SimpleNamespace(stopping=asyncio.Event())
        hung = [asyncio.create_task(asyncio.Event().wait()) for _ in range(3)]
        cutter = asyncio.create_task(runner._cut_in_flight(state, hung))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert not any(task.done() for task in hung)  # nothing is cut before the run halts
        state.stopping.set()
        await cutter
        await asyncio.gather(*hung, return_exceptions=True)
        return [task.cancelled() for task in hung]

    assert asyncio.run(scenario()) == [True, True, True]
