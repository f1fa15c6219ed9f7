"""Live counts of a run (done, failed, correct, accuracy so far) and the metrics derived from them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter

from anesbench import metrics
from anesbench.dataset.model import LEVEL_NAMES
from anesbench.stats import wilson
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import ResultRow

ACCURACY_GAUGES = (metrics.RUN_ACCURACY, metrics.RUN_ACCURACY_CI_LOW, metrics.RUN_ACCURACY_CI_HIGH)


@dataclass(slots=True)
class RunProgress:
    """Counts for one run; ``record`` is called for every result as it arrives."""

    model: str
    total: int
    dataset: str = ""
    config: str = ""  # the configuration label of run-level metrics (see metrics.RUN_LABELS)
    done: int = 0
    failed: int = 0
    correct: int = 0
    unanswered: int = 0
    started: float = field(default_factory=time.monotonic)
    _cells: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (lang, level) -> [correct, total]
    _published: tuple[int, int] = (-1, -1)
    _graded: dict[tuple[str, str, str], Counter] = field(default_factory=dict)  # cached metric children

    def seed(self, rows: Iterable[LeaderboardRow]) -> None:
        """Start from what a resumed run already has in the store."""
        for row in rows:
            if row.level != "overall":
                self._cells[(row.language, row.level)] = [row.correct, row.total]
                self.done += row.total
                self.correct += row.correct
                self.unanswered += row.unanswered

    def record(self, row: ResultRow) -> None:
        level = LEVEL_NAMES[row.level]
        if row.error is not None:
            self.failed += 1
            result = "error"
        else:
            result = "correct" if row.correct else "unanswered" if row.pred is None else "wrong"
            cell = self._cells.setdefault((row.language, level), [0, 0])
            cell[0] += result == "correct"
            cell[1] += 1
            self.done += 1
            self.correct += result == "correct"
            self.unanswered += result == "unanswered"
        key = (row.language, level, result)
        counter = self._graded.get(key)
        if counter is None:
            counter = self._graded[key] = metrics.ITEMS_GRADED.labels(self.model, *key)
        counter.inc()

    @property
    def _run_labels(self) -> tuple[str, str, str]:
        return self.model, self.dataset, self.config

    def idle(self) -> None:
        """The run is over: no active work for this model, so no progress timestamp either."""
        metrics.RUN_LAST_PROGRESS.labels(*self._run_labels).set(0)

    def forget(self) -> None:
        """The run was cancelled: drop its item and accuracy series, so that neither a stalled-run alert
        nor an accuracy comparison takes a run someone stopped on purpose for an unfinished one."""
        for state in ("total", "done", "failed"):
            with contextlib.suppress(KeyError):
                metrics.RUN_ITEMS.remove(*self._run_labels, state)
        for language, level in self._accuracy_cells():
            for gauge in ACCURACY_GAUGES:
                with contextlib.suppress(KeyError):
                    gauge.remove(*self._run_labels, language, level)

    def publish(self) -> None:
        """Refresh the gauges (called a few times a second, not per result)."""
        for state, count in (("total", self.total), ("done", self.done), ("failed", self.failed)):
            metrics.RUN_ITEMS.labels(*self._run_labels, state).set(count)
        if (self.done, self.failed) != self._published:
            self._published = (self.done, self.failed)
            metrics.RUN_LAST_PROGRESS.labels(*self._run_labels).set(time.time())
        for (language, level), (correct, total) in self._accuracy_cells().items():
            for gauge, value in zip(ACCURACY_GAUGES, (correct / total, *wilson(correct, total)), strict=True):
                gauge.labels(*self._run_labels, language, level).set(value)

    def _accuracy_cells(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(language, level) -> (correct, total), with each language's ``overall`` added."""
        cells = {key: (correct, total) for key, (correct, total) in self._cells.items()}
        for (language, _), (correct, total) in self._cells.items():
            overall = cells.get((language, "overall"), (0, 0))
            cells[language, "overall"] = (overall[0] + correct, overall[1] + total)
        return cells
