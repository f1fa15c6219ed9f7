"""Live progress: a tqdm bar on a terminal, else a plain line every 30 s on stderr (``kubectl logs -f``)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from tqdm import tqdm

from anesbench.engine.progress import RunProgress
from anesbench.store.records import ResultRow, RunRecord

PROGRESS_INTERVAL_ENV = "ANESBENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0


def summary_line(run: RunRecord) -> str:
    """One parseable line for scripts: key=value pairs."""
    accuracy = f"{run.correct / run.done:.4f}" if run.done else "nan"
    return (
        f"run_id={run.id} status={run.status} done={run.done} total={run.total} failed={run.failed} "
        f"correct={run.correct} unanswered={run.unanswered} accuracy={accuracy}"
    ) + ("" if run.delta is None else f" delta={run.delta:+.4f} delta_p={run.delta_pvalue:.3g}")


def progress_interval() -> float:
    """Seconds between progress lines: $ANESBENCH_PROGRESS_INTERVAL (tests set it low), else 30."""
    try:
        value = float(os.environ.get(PROGRESS_INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """A run's progress, fed by ``update`` or, as a RunObserver, by the engine: a bar (done / rate / ETA, accuracy
    and errors), or a line ``progress: 120/1000 (12.0%) 35.2 items/s ETA 0m25s accuracy 0.812 errors 3`` every
    ``interval`` from a timer, so that one appears even while nothing finishes (the log shows the run is alive)."""

    def __init__(self, mode: str, interval: float | None = None) -> None:
        self.mode = mode
        self.interval = interval or progress_interval()
        self._counts = (0, 0, 0, 0)  # done, total, correct, failed
        self._initial = 0
        self._started = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._bar: tqdm | None = None

    def begin(self, done: int, total: int) -> None:
        self._counts = (done, total, 0, 0)
        self._initial, self._started = done, time.monotonic()
        if self.mode == "bar":
            self._bar = tqdm(total=total, initial=done, unit="item", dynamic_ncols=True, file=sys.stderr,
                             mininterval=0.2, smoothing=0.1)
        elif self.mode == "line":
            self._schedule()

    def update(self, done: int, total: int, correct: int, failed: int) -> None:
        self._counts = (done, total, correct, failed)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            accuracy = f"{correct / done:.3f}" if done else "-"
            self._bar.set_postfix_str(f"acc={accuracy} errors={failed}", refresh=False)

    def line(self) -> str:
        done, total, correct, failed = self._counts
        elapsed = time.monotonic() - self._started
        rate = (done - self._initial) / elapsed if elapsed > 0 else 0.0
        share = f"{100 * done / total:.1f}%" if total else "-"
        eta = _duration((total - done) / rate) if rate > 0 and total > done else "-"
        accuracy = f"{correct / done:.3f}" if done else "-"
        return (f"progress: {done}/{total} ({share}) {rate:.1f} items/s ETA {eta} accuracy {accuracy} "
                f"errors {failed}")

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self._schedule()

    def end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_start(self, run: RunRecord, progress: RunProgress) -> None:
        print(f"run {run.id}: {run.total - progress.done} to send, {progress.done} already done", file=sys.stderr)
        self.begin(progress.done, run.total)

    def on_result(self, row: ResultRow, progress: RunProgress) -> None:
        self.update(progress.done, progress.total, progress.correct, progress.failed)

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None:
        self.update(progress.done, progress.total, progress.correct, progress.failed)
        self.end()
