"""Live progress on a terminal (tqdm on stderr); silence otherwise."""

from __future__ import annotations

import sys

from tqdm import tqdm

from anesbench.engine.progress import RunProgress
from anesbench.store.records import ResultRow, RunRecord


class TerminalProgress:
    """RunObserver showing done / rate / ETA and accuracy and errors so far."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._since_postfix = 0

    def on_start(self, run: RunRecord, progress: RunProgress) -> None:
        print(f"run {run.id}: {run.total - progress.done} to send, {progress.done} already done", file=sys.stderr)
        self._bar = tqdm(total=run.total, initial=progress.done, unit="item", dynamic_ncols=True, file=sys.stderr,
                         mininterval=0.2, smoothing=0.1)

    def on_result(self, row: ResultRow, progress: RunProgress) -> None:
        bar = self._bar
        if bar is None:
            return
        bar.update(1)
        self._since_postfix += 1
        if self._since_postfix >= 25:
            self._since_postfix = 0
            self._postfix(progress)

    def _postfix(self, progress: RunProgress) -> None:
        if self._bar is not None:
            accuracy = f"{progress.accuracy:.3f}" if progress.accuracy is not None else "-"
            self._bar.set_postfix_str(f"acc={accuracy} errors={progress.failed}", refresh=False)

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None:
        if self._bar is not None:
            self._postfix(progress)
            self._bar.close()
            self._bar = None


def summary_line(run: RunRecord) -> str:
    """One parseable line for scripts: key=value pairs."""
    accuracy = f"{run.correct / run.done:.4f}" if run.done else "nan"
    return (
        f"run_id={run.id} status={run.status} done={run.done} total={run.total} failed={run.failed} "
        f"correct={run.correct} unanswered={run.unanswered} accuracy={accuracy}"
    )
