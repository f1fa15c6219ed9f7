"""What ``anesbench report`` reads besides the board, aggregated in DuckDB so that a store of thousands of
runs costs about what one run does: per run its outcome and method counts, token and latency quantiles
and its first wrong answers; per series the overall accuracy of every completed full run (the trend,
from the cell counts, so pruned runs keep their points)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from anesbench.store.export_sql import EXPORT_COLUMNS, EXPORT_NAMES, export_settings
from anesbench.store.leaderboard_sql import OUTCOME_SQL, SERIES, cells_sql

IDS = "SELECT unnest(?::VARCHAR[])"
FIGURES_SQL = f"""
SELECT run_id, count(*) FILTER (WHERE outcome = 'correct'), count(*) FILTER (WHERE outcome = 'wrong'),
       count(*) FILTER (WHERE outcome = 'unanswered'), count(*) FILTER (WHERE outcome = 'error'),
       histogram(coalesce(nullif(method, ''), '(none)')) FILTER (WHERE outcome <> 'error'),
       quantile_cont(completion_tokens, 0.5), quantile_disc(completion_tokens, 0.9), max(completion_tokens),
       quantile_cont(latency_s, 0.5), quantile_disc(latency_s, 0.9), max(latency_s)
FROM (SELECT run_id, {OUTCOME_SQL} AS outcome, method, completion_tokens, latency_s FROM results
      WHERE run_id IN ({IDS}))
GROUP BY run_id
"""
WRONG_SQL = f"""
SELECT run_id, {', '.join(expr for _, expr in EXPORT_COLUMNS)} FROM results
WHERE run_id IN ({IDS}) AND {OUTCOME_SQL} IN ('wrong', 'unanswered')
QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY item_id, language, sample) <= ?
ORDER BY run_id, item_id, language, sample
"""
TREND_SQL = f"""
WITH chosen AS (SELECT id FROM runs WHERE status = 'completed' AND item_limit IS NULL
                AND model IN (SELECT model FROM runs WHERE id IN ({IDS}))),
cells AS ({cells_sql("SELECT id FROM chosen", figures=False)})
SELECT r.model, hash({SERIES})::VARCHAR,
       printf('%s, %s, max %d tokens, T %g', r.dataset_name, r.prompt_template, r.max_tokens, r.temperature),
       r.id, r.created_at, sum(c.correct), sum(c.total)
FROM cells c JOIN runs r ON r.id = c.run_id WHERE c.level = 'overall'
GROUP BY ALL ORDER BY 1, 2, r.created_at, r.id
"""


@dataclass(frozen=True, slots=True)
class RunFigures:
    run_id: str
    by_outcome: dict[str, int]
    methods: dict[str, int]
    tokens: tuple[float, float, float] | None  # median, p90, max; None: nothing recorded
    latencies: tuple[float, float, float] | None
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the first wrong or unanswered, as export rows


@dataclass(frozen=True, slots=True)
class TrendPoint:
    model: str
    series: str  # the series key (opaque)
    label: str  # what the series is, for a legend
    run_id: str
    created_at: datetime
    correct: int
    total: int


def _quantiles(values: Sequence[Any]) -> tuple[float, float, float] | None:
    return None if values[0] is None else (float(values[0]), float(values[1]), float(values[2]))


class ReportReads:
    """The report's reads of :class:`~anesbench.store.database.Store`."""

    _con: duckdb.DuckDBPyConnection

    def report_figures(self, run_ids: Sequence[str], wrong_shown: int) -> list[RunFigures]:
        """Figures of the runs named, in their order (a run with no results left: zero counts)."""
        ids = list(run_ids)
        with export_settings(self._con):  # memory stays flat whatever the store's size
            counts = {row[0]: row[1:] for row in self._con.execute(FIGURES_SQL, [ids]).fetchall()}
            wrong: dict[str, list[dict[str, Any]]] = {}
            for run_id, *row in self._con.execute(WRONG_SQL, [ids, wrong_shown]).fetchall():
                wrong.setdefault(run_id, []).append(dict(zip(EXPORT_NAMES, row, strict=True)))
        figures = []
        for run_id in ids:
            row = counts.get(run_id, (0, 0, 0, 0, None, *[None] * 6))
            figures.append(RunFigures(run_id, dict(zip(("correct", "wrong", "unanswered", "error"), row[:4], strict=True)),
                                      row[4] or {}, _quantiles(row[5:8]), _quantiles(row[8:]), wrong.get(run_id, [])))
        return figures

    def trend(self, run_ids: Sequence[str]) -> list[TrendPoint]:
        """Every completed full run of the models of ``run_ids``, by model, series and time."""
        return [TrendPoint(*row) for row in self._con.execute(TREND_SQL, [list(run_ids)]).fetchall()]
