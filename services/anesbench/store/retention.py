"""Retention and backups of the DuckDB file: prune old runs, shrink the file, copy it consistently.

Pruning picks finished runs only (completed, failed, cancelled: never one still pending or running)
and never a run the default leaderboard shows. ``--keep-last N`` keeps the N newest finished runs of
each series (model, dataset name and content, configuration, extractor version: what the board's
rows stand for); ``--older-than DAYS`` picks the runs finished more than DAYS ago. With aggregates
kept, a picked run keeps its record, its per-(language, level) counts in ``run_cells`` and its deltas
(``run_deltas``), and loses its results (replies, reasoning, per-item grades): the leaderboard, the run
list and the deltas show it as before, item-level reads (compare, export, report) no longer can.
Without, the picked runs are deleted.

DuckDB never gives freed blocks back to the file system (neither ``CHECKPOINT`` nor ``VACUUM`` makes
the file smaller), so after pruning the store is copied into a fresh file (``COPY FROM DATABASE``)
that replaces the old one. Every call runs on the store's one thread, so nothing is written meanwhile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from anesbench.errors import InvalidInput
from anesbench.store.leaderboard_sql import SAMPLES_SQL, SERIES, cell_counts_sql, chosen_runs_sql
from anesbench.store.sample_stats import SampleFigures, summarize_samples

FINISHED = "('completed', 'failed', 'cancelled')"


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    run_ids: list[str]  # the runs pruned, in id order
    kept_aggregates: bool
    bytes_before: int  # the file with its write-ahead log, before and after
    bytes_after: int


def file_bytes(path: str) -> int:
    """The store's size on disk: the file and its write-ahead log."""
    return sum(Path(name).stat().st_size for name in (path, path + ".wal") if Path(name).exists())


class Retention:
    """The pruning and backup methods of :class:`~anesbench.store.database.Store`."""

    path: str
    _con: duckdb.DuckDBPyConnection

    def prune_candidates(self, keep_last: int | None, older_than_days: float | None) -> list[str]:
        """Ids of the finished runs that pruning with these limits picks (see the module's docstring)."""
        if (keep_last is None) == (older_than_days is None):
            raise InvalidInput("give exactly one of keep_last or older_than_days", field="keep_last")
        if keep_last is not None and keep_last < 1:
            raise InvalidInput("must be at least 1", field="keep_last")
        if older_than_days is not None and older_than_days < 0:
            raise InvalidInput("must not be negative", field="older_than_days")
        board, _ = chosen_runs_sql(None, False)
        params: list[object]
        if keep_last is not None:
            picked, params = "newest > ?", [keep_last]
        else:
            picked, params = "finished_at < ?", [datetime.now() - timedelta(days=older_than_days or 0.0)]
        rows = self._con.execute(
            f"""WITH finished AS (
                    SELECT id, finished_at,
                           row_number() OVER (PARTITION BY {SERIES} ORDER BY created_at DESC, id DESC) AS newest
                    FROM runs WHERE status IN {FINISHED}
                )
                SELECT id FROM finished WHERE {picked} AND id NOT IN ({board}) ORDER BY id""",
            params,
        ).fetchall()
        return [run_id for (run_id,) in rows]

    def prune(self, keep_last: int | None = None, older_than_days: float | None = None,
              keep_aggregates: bool = False) -> PruneOutcome:
        """Prune the picked runs, then shrink the file; runs pruned with aggregates before are skipped."""
        before = file_bytes(self.path) if self.path != ":memory:" else 0
        run_ids = self.prune_candidates(keep_last, older_than_days)
        if keep_aggregates:
            run_ids = [run_id for (run_id,) in self._con.execute(
                "SELECT id FROM runs WHERE id IN (SELECT unnest(?::VARCHAR[])) AND pruned_at IS NULL ORDER BY id",
                [run_ids]).fetchall()]
        if run_ids:
            self._drop(run_ids, keep_aggregates)
            self._compact()
        after = file_bytes(self.path) if self.path != ":memory:" else 0
        return PruneOutcome(run_ids, keep_aggregates, before, after)

    def _drop(self, run_ids: list[str], keep_aggregates: bool) -> None:
        self._con.register("_pruned", pa.table({"id": pa.array(run_ids, pa.string())}))
        try:
            self._con.execute("BEGIN TRANSACTION")
            try:
                if keep_aggregates:
                    self._con.execute(f"INSERT INTO run_cells BY NAME {cell_counts_sql('SELECT id FROM _pruned')}")
                    self._keep_sample_figures(run_ids)
                    self._con.execute("UPDATE runs SET pruned_at = ? WHERE id IN (SELECT id FROM _pruned)",
                                      [datetime.now()])
                else:
                    for table, key in (("run_cells", "run_id"), ("run_deltas", "run_id"), ("run_specs", "run_id"),
                                       ("runs", "id")):
                        self._con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM _pruned)")
                self._con.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM _pruned)")
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        finally:
            self._con.unregister("_pruned")

    def _keep_sample_figures(self, run_ids: list[str]) -> None:
        """The figures of runs with several samples per question, computed as the leaderboard does."""
        sampled = self._con.execute(
            "SELECT id FROM runs WHERE samples > 1 AND id IN (SELECT unnest(?::VARCHAR[]))", [run_ids]).fetchall()
        for (run_id,) in sampled:
            rows = self._con.execute(SAMPLES_SQL, [run_id]).fetchall()
            for (language, level), figures in summarize_samples(tuple(row[1:]) for row in rows).items():
                self._con.execute(
                    "UPDATE run_cells SET mean_accuracy = ?, majority_accuracy = ?, agreement = ? "
                    "WHERE run_id = ? AND language = ? AND level = ?",
                    [figures.mean_accuracy, figures.majority_accuracy, figures.agreement, run_id, language, level])

    def pruned_sample_figures(self, run_id: str) -> dict[tuple[str, str], SampleFigures]:
        """(language, level) -> the sample figures kept when the run was pruned (empty for any other run)."""
        rows = self._con.execute(
            "SELECT language, level, mean_accuracy, majority_accuracy, agreement FROM run_cells "
            "WHERE run_id = ? AND mean_accuracy IS NOT NULL", [run_id]).fetchall()
        return {(language, level): SampleFigures(*figures) for language, level, *figures in rows}

    def require_results(self, run_id: str) -> None:
        """Bad input when the run was pruned: its results are gone (a resume would count its work twice,
        compare and export would see no items)."""
        pruned = self._con.execute("SELECT pruned_at IS NOT NULL FROM runs WHERE id = ?", [run_id]).fetchone()
        if pruned == (True,):
            raise InvalidInput(f"run {run_id!r} was pruned: only its counts are kept (leaderboard, runs)")

    def backup_to(self, out: str) -> None:
        """Write a consistent copy of the whole store to the new DuckDB file ``out`` (it must not exist)."""
        if Path(out).exists():
            raise InvalidInput(f"{out} exists", field="out")
        self._copy_to(out)

    def _copy_to(self, out: str) -> None:
        (current,) = self._con.execute("SELECT current_database()").fetchone() or ("",)
        quoted = out.replace("'", "''")  # ATTACH takes no parameters
        self._con.execute(f"ATTACH '{quoted}' AS _copy")
        try:
            self._con.execute(f'COPY FROM DATABASE "{current}" TO _copy')
        finally:
            self._con.execute("DETACH _copy")

    def _compact(self) -> None:
        """Copy the store into a fresh file and put that in its place: only this frees the pruned blocks.

        The connection is closed for the rename and opened again at once; this process holds the store's
        thread meanwhile, so no call of its own sees the gap.
        """
        if self.path == ":memory:":
            return
        fresh = self.path + ".compact"
        for stale in (fresh, fresh + ".wal"):
            Path(stale).unlink(missing_ok=True)
        try:
            self._copy_to(fresh)
        except BaseException:
            Path(fresh).unlink(missing_ok=True)  # e.g. the volume is full: the old file stays, pruned
            raise
        self._con.close()
        os.replace(fresh, self.path)
        self._con = duckdb.connect(self.path)
        self._con.execute("SET threads = 1")
