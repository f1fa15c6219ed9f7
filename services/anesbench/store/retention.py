"""Retention and backups of the DuckDB file: prune old runs, shrink the file, copy it consistently, refuse
work before the volume is full.

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

from anesbench.errors import InvalidInput, QuotaExceeded
from anesbench.store.leaderboard_sql import SERIES, cell_counts_sql, chosen_runs_sql

FINISHED = "('completed', 'failed', 'cancelled')"


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    run_ids: list[str]  # the runs pruned, in id order
    kept_aggregates: bool
    bytes_before: int  # the file with its write-ahead log, before and after
    bytes_after: int


def file_bytes(path: str) -> int:
    """The store's size on disk: the file and its write-ahead log (0 for an in-memory store)."""
    return sum(Path(name).stat().st_size for name in (path, path + ".wal") if Path(name).exists())


def check_budget(path: str, budget: int, adding: int) -> None:
    """Refuse ``adding`` more bytes when the store at ``path`` would pass ``budget`` (0: no budget).

    >>> check_budget(":memory:", 100, 10)
    >>> try:
    ...     check_budget(":memory:", 5, 10)
    ... except QuotaExceeded as exc:
    ...     print(exc.message[:38])
    the store at :memory: holds 0 bytes; 1
    """
    used = file_bytes(path)
    if budget and used + adding > budget:
        raise QuotaExceeded(f"the store at {path} holds {used} bytes; {adding} more would pass its budget of "
                            f"{budget} bytes ({{store_budget_bytes}}): export and delete old runs, or raise the budget",
                            mentions=("store_budget_bytes",))


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
        before = file_bytes(self.path)
        run_ids = self.prune_candidates(keep_last, older_than_days)
        if keep_aggregates:
            run_ids = [run_id for (run_id,) in self._con.execute(
                "SELECT id FROM runs WHERE id IN (SELECT unnest(?::VARCHAR[])) AND pruned_at IS NULL ORDER BY id",
                [run_ids]).fetchall()]
        if run_ids:
            self._drop(run_ids, keep_aggregates)
            self._compact()
        return PruneOutcome(run_ids, keep_aggregates, before, file_bytes(self.path))

    def _drop(self, run_ids: list[str], keep_aggregates: bool) -> None:
        self._con.register("_pruned", pa.table({"id": pa.array(run_ids, pa.string())}))
        self._con.begin()
        try:
            if keep_aggregates:
                self._con.execute(f"INSERT INTO run_cells BY NAME {cell_counts_sql('SELECT id FROM _pruned')}")
                self._con.execute("UPDATE runs SET pruned_at = ? WHERE id IN (SELECT id FROM _pruned)", [datetime.now()])
            else:
                for table, key in (("run_cells", "run_id"), ("run_deltas", "run_id"), ("run_specs", "run_id"),
                                   ("runs", "id")):
                    self._con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM _pruned)")
            self._con.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM _pruned)")
            self._con.commit()
        except BaseException:
            self._con.rollback()
            raise
        finally:
            self._con.unregister("_pruned")

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
