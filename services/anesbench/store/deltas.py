"""Run-to-run deltas: which earlier run a completed run is paired with, and the deltas kept for it.

A run is paired only when it is a clean run (completed, no errors) of the whole dataset, and only with
the newest earlier such run of the same series (:data:`~anesbench.store.leaderboard_sql.SERIES`) whose
results are still stored: a configuration change starts a new series, never compared across.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from datetime import datetime

import duckdb

from anesbench.store.leaderboard_sql import CLEAN_RUN, SERIES
from anesbench.store.records import RunDelta

PAIRABLE = f"{CLEAN_RUN} AND item_limit IS NULL AND pruned_at IS NULL"
DELTA_COLUMNS = "run_id, base_run_id, language, n_pairs, delta, ci_low, ci_high, pvalue"


class Deltas:
    """The delta methods of :class:`~anesbench.store.database.Store`."""

    _con: duckdb.DuckDBPyConnection

    def delta_base(self, run_id: str) -> str | None:
        """The id of the run ``run_id`` is to be paired with; None when it is not pairable or first of its series."""
        row = self._con.execute(
            f"""SELECT id FROM runs WHERE {PAIRABLE} AND row(created_at, id) < (SELECT row(created_at, id) FROM runs
                WHERE id = ? AND {PAIRABLE}) AND row({SERIES}) = (SELECT row({SERIES}) FROM runs WHERE id = ?)
                ORDER BY created_at DESC, id DESC LIMIT 1""", [run_id, run_id]).fetchone()
        return row[0] if row else None

    def save_deltas(self, deltas: Sequence[RunDelta]) -> None:
        self._con.executemany(f"INSERT OR REPLACE INTO run_deltas ({DELTA_COLUMNS}, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              [[*astuple(delta), datetime.now()] for delta in deltas])

    def newest_deltas(self) -> list[tuple[str, str, RunDelta]]:
        """(model, dataset, delta) of the newest delta per model, dataset and language: what /metrics shows."""
        rows = self._con.execute(
            f"""SELECT r.model, r.dataset_name, {', '.join('d.' + c for c in DELTA_COLUMNS.split(', '))}
                FROM run_deltas d JOIN runs r ON r.id = d.run_id
                QUALIFY row_number() OVER (PARTITION BY r.model, r.dataset_name, d.language
                                           ORDER BY r.created_at DESC, d.created_at DESC) = 1
                ORDER BY r.model, r.dataset_name, d.language""").fetchall()
        return [(model, dataset, RunDelta(*delta)) for model, dataset, *delta in rows]
