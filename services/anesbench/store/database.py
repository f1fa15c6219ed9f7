"""The DuckDB store. One process opens the file read-write; all calls come from one thread.

Results are written in batches through an Arrow table (``executemany`` costs ~2 ms a row) with
``INSERT OR REPLACE`` on the (run_id, item_id, language, sample) key, so a repeated write can
never duplicate a result and a retried error row is replaced by its answer.

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

What ``anesbench report`` reads besides the board is aggregated in DuckDB, so that a store of thousands of
runs costs about what one run does; its trend reads the cell counts, so pruned runs keep their points.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from anesbench.errors import ConfigConflict, InvalidInput, NotFound, QuotaExceeded, StoreBusy
from anesbench.stats import wilson
from anesbench.store.export import EXPORT_COLUMNS, EXPORT_NAMES, SELECT_EXPORT, copy_statement, export_settings
from anesbench.store.leaderboard_sql import (
    CLEAN_RUN,
    LEVEL_SQL,
    OUTCOME_SQL,
    SERIES,
    LeaderboardRow,
    ReliabilityBin,
    cell_counts_sql,
    cells_sql,
    chosen_runs_sql,
    leaderboard_sql,
)
from anesbench.store.records import (
    PruneOutcome,
    ResultRow,
    RunDelta,
    RunFigures,
    RunRecord,
    TrendPoint,
)
from anesbench.store.schema import SCHEMA

log = logging.getLogger(__name__)

RUN_COLUMNS = (
    "id, model, endpoint, dataset_name, dataset_sha256, prompt_template, prompt_sha256, max_tokens, temperature, "
    "samples, languages, harness_version, config_hash, status, total"
)
RUN_SELECT = f"""
SELECT {RUN_COLUMNS},
       coalesce(c.done, 0), coalesce(c.failed, 0), coalesce(c.correct, 0), coalesce(c.unanswered, 0),
       r.created_at, r.started_at, r.finished_at, r.error, coalesce(r.extractor_version, ''), r.ordering, r.item_limit,
       coalesce(r.elicit, 'off'), r.elicit_prompt, r.elicit_prompt_sha256, r.elicit_constraint, d.delta, d.pvalue,
       coalesce(r.scoring, 'generate')
FROM runs r LEFT JOIN (
    -- the overall delta: across every language ('all') or the run's one language
    SELECT run_id, delta, pvalue FROM run_deltas
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY language <> 'all', language) = 1
) d ON d.run_id = r.id LEFT JOIN (
    SELECT run_id,
           count(*) FILTER (WHERE error IS NULL) AS done,
           count(*) FILTER (WHERE error IS NOT NULL) AS failed,
           count(*) FILTER (WHERE correct) AS correct,
           count(*) FILTER (WHERE error IS NULL AND pred IS NULL) AS unanswered
    FROM results GROUP BY run_id
    UNION ALL
    SELECT run_id, sum(done), sum(failed), sum(correct), sum(done_unanswered)
    FROM run_cells WHERE level <> 'overall' GROUP BY run_id
) c ON c.run_id = r.id
"""

# Credentials an older anesbench stored with a run (`"https://user:secret@host/v1"` in a run spec): a quoted URL
# whose authority holds user info. Deleting them is not enough, DuckDB leaves the old bytes in free blocks, so a
# file that held any is compacted into a fresh file once.
USERINFO = r'("[a-zA-Z][a-zA-Z0-9+.-]*://)[^/"@\s]*@'
# A pairable run: a clean run of the whole dataset whose results are still stored.
PAIRABLE = f"{CLEAN_RUN} AND item_limit IS NULL AND pruned_at IS NULL"
DELTA_COLUMNS = "run_id, base_run_id, language, n_pairs, delta, ci_low, ci_high, pvalue"

ABANDONED = ("the process running it stopped before it finished (killed, or the store could not write); "
             "running it again with the same run id resumes it")
HISTORY_RUNS = 5  # earlier runs an ordering learns from, newest first
CHECKPOINT_ROWS = 16_384
FINISHED = "('completed', 'failed', 'cancelled')"
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


@functools.cache
def schema_columns() -> list[tuple[str, str, str]]:
    """(table, column, type) of every column :data:`SCHEMA` creates (an in-memory DuckDB costs ~70 ms: once)."""
    with duckdb.connect() as fresh:
        fresh.execute(SCHEMA)
        return fresh.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal").fetchall()


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


def _quantiles(values: Sequence[Any]) -> tuple[float, float, float] | None:
    return None if values[0] is None else (float(values[0]), float(values[1]), float(values[2]))


class Store:
    """Synchronous DuckDB access; wrap calls in one executor thread from async code."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:" and not Path(self.path).parent.exists():
            raise InvalidInput(f"directory {Path(self.path).parent} does not exist", field="db")
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(
                    f"database {self.path} is open in another process (a dispatcher owns it: use {{dispatcher}})",
                    mentions=("dispatcher",)) from None
            raise InvalidInput(f"cannot open {self.path}: {exc}", field="db") from None
        except duckdb.Error as exc:
            raise InvalidInput(f"{self.path} is not a usable DuckDB file: {exc}", field="db") from None
        if read_only:
            self._add_missing_columns(read_only=True)
        else:
            # One thread: every call comes from one thread anyway, and each extra DuckDB thread keeps its
            # own allocator arenas (~7 MB more resident at 44k results on this machine).
            self._con.execute("SET threads = 1")
            self._con.execute(SCHEMA)
            self._add_missing_columns(read_only=False)
            found = self._con.execute(f"SELECT count(*) FROM run_specs WHERE regexp_matches(spec, '{USERINFO}')")
            if found.fetchone() != (0,):
                self._con.execute(f"UPDATE run_specs SET spec = regexp_replace(spec, '{USERINFO}', '\\1', 'g')")
                self._compact()
                log.warning("removed credentials from the run specs stored in %s (rewrote the file)", self.path)
        self._result_schema = self._con.execute("SELECT * FROM results LIMIT 0").to_arrow_table().schema
        self._unsaved = 0  # result rows written since the last checkpoint

    def _add_missing_columns(self, read_only: bool) -> None:
        """Give a file written before newer columns (or tables) what :data:`SCHEMA` has: read-write, the columns
        (NULL in the rows there are); read-only, temporary views of the same names (found before the file's
        tables) that show them NULL, or empty, so every query reads one shape."""
        shape = schema_columns()
        (database,) = self._con.execute("SELECT current_database()").fetchone() or ("",)
        present = set(self._con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' AND database_name = ?",
            [database]).fetchall())
        tables = {table for table, _ in present}
        for table in dict.fromkeys(table for table, _, _ in shape):
            missing = [(name, kind) for t, name, kind in shape if t == table and (t, name) not in present]
            nulls = ", ".join(f"NULL::{kind} AS {name}" for name, kind in missing)
            if not read_only:
                for name, kind in missing:
                    self._con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            elif table not in tables:
                self._con.execute(f"CREATE TEMP VIEW {table} AS SELECT {nulls} WHERE false")
            elif missing:
                quoted = '"' + str(database).replace('"', '""') + '"'
                self._con.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {nulls} FROM {quoted}.main.{table}")

    def close(self) -> None:
        self._con.close()

    # --- runs -------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        row = self._con.execute(RUN_SELECT + " WHERE r.id = ?", [run_id]).fetchone()
        if row is None:
            raise NotFound(f"no run with id '{run_id}' in {self.path}")
        return RunRecord(*row)

    def require_results(self, run_id: str) -> None:
        """Not found for an unknown run, bad input for a pruned one: its results are gone (a resume would count
        its work twice, compare and export would see no items)."""
        self.get_run(run_id)
        if self._con.execute("SELECT pruned_at IS NOT NULL FROM runs WHERE id = ?", [run_id]).fetchone() == (True,):
            raise InvalidInput(f"run {run_id!r} was pruned: only its counts are kept (leaderboard, runs)")

    def find_run(self, run_id: str) -> RunRecord | None:
        try:
            return self.get_run(run_id)
        except NotFound:
            return None

    def list_runs(self) -> list[RunRecord]:
        rows = self._con.execute(RUN_SELECT + " ORDER BY r.created_at, r.id").fetchall()
        return [RunRecord(*row) for row in rows]

    def begin_run(self, run: RunRecord) -> RunRecord:
        """Create the run, or re-open it for resuming when its configuration matches."""
        existing = self.find_run(run.id)
        now = datetime.now()
        if existing is None:
            names = (*RUN_COLUMNS.split(", "), "extractor_version", "item_limit", "elicit", "elicit_prompt",
                     "elicit_prompt_sha256", "scoring")
            values = {**{name: getattr(run, name) for name in names}, "status": "running", "created_at": now, "started_at": now}
            self._con.execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                              list(values.values()))
            return self.get_run(run.id)
        self.require_results(run.id)
        if existing.config_hash != run.config_hash:
            fields = ("model", "dataset_sha256", "prompt_sha256", "max_tokens", "temperature", "samples", "languages",
                      "elicit", "elicit_prompt_sha256", "scoring")
            changed = "; ".join(f"{name}: {getattr(existing, name)!r} -> {getattr(run, name)!r}" for name in fields
                                if getattr(existing, name) != getattr(run, name)) or "harness version"
            raise ConfigConflict(f"a run {run.id!r} exists with a different configuration ({changed}); use another id",
                                 field="run_id")
        self._con.execute(
            "UPDATE runs SET status = 'running', endpoint = ?, finished_at = NULL, error = NULL, "
            "harness_version = ?, extractor_version = ? WHERE id = ?",
            [run.endpoint, run.harness_version, run.extractor_version, run.id],
        )
        return self.get_run(run.id)

    def set_elicit_constraint(self, run_id: str, constraint: str) -> None:
        self._con.execute("UPDATE runs SET elicit_constraint = ? WHERE id = ?", [constraint, run_id])

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> RunRecord:
        self._con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
            [status, datetime.now(), error, run_id],
        )
        return self.get_run(run_id)

    def fail_abandoned(self) -> list[str]:
        """Mark failed every unfinished run that no process can still be running, and return their ids.

        Call it on opening the file read-write: DuckDB then holds the file's lock, so no other process
        is executing a run in it, and a run still 'pending' or 'running' was left so by a process that
        was killed or could not write its final status. Runs a dispatcher keeps a spec for are left
        alone: that dispatcher resumes them by itself.
        """
        rows = self._con.execute(
            "UPDATE runs SET status = 'failed', finished_at = ?, error = ? "
            "WHERE status IN ('pending', 'running') AND id NOT IN (SELECT run_id FROM run_specs) RETURNING id",
            [datetime.now(), ABANDONED],
        ).fetchall()
        return sorted(run_id for (run_id,) in rows)

    def unfinished_runs(self) -> list[RunRecord]:
        return [run for run in self.list_runs() if run.status in ("pending", "running")]

    # --- results ----------------------------------------------------------------------------
    def completed_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        return set(self._con.execute(
            "SELECT item_id, language, sample FROM results WHERE run_id = ? AND error IS NULL", [run_id]).fetchall())

    def unfinished_elicitations(self, run_id: str) -> list[ResultRow]:
        """Answered results whose follow-up turn is still to do (stored before it was sent) or failed."""
        return self._results("WHERE run_id = ? AND error IS NULL AND elicitation IN ('pending', 'failed') "
                             "ORDER BY item_id, language, sample", [run_id])

    def pending_elicitations(self, run_id: str) -> int:
        row = self._con.execute(
            "SELECT count(*) FROM results WHERE run_id = ? AND elicitation = 'pending'", [run_id]).fetchone()
        return int(row[0]) if row else 0

    def write_results(self, rows: Sequence[ResultRow]) -> None:
        """Write a batch in one statement; a key written before (an error row being retried, a reply whose
        follow-up has come back) is replaced, and within a batch the last row of a key wins."""
        if not rows:
            return
        rows = list({(row.item_id, row.language, row.sample, row.run_id): row for row in rows}.values())
        self._con.register("_batch", pa.table({column.name: pa.array([getattr(row, column.name) for row in rows], column.type)
                                               for column in self._result_schema}))
        try:
            try:
                self._con.execute("INSERT INTO results BY NAME SELECT * FROM _batch")  # 4x faster than OR REPLACE
            except duckdb.ConstraintException:
                self._con.execute("INSERT OR REPLACE INTO results BY NAME SELECT * FROM _batch")
        finally:
            self._con.unregister("_batch")
        self._unsaved += len(rows)
        if self._unsaved >= CHECKPOINT_ROWS:
            # Rows wait in memory, uncompressed, until a checkpoint (DuckDB's own comes at 16 MB of WAL
            # and at close, when compressing them all at once briefly costs ~1 KB per row more): keep
            # that bounded, so a long run's memory stays flat.
            self._con.execute("CHECKPOINT")
            self._unsaved = 0

    def reusable(self, run_id: str, request_hashes: Iterable[str]) -> dict[str, ResultRow]:
        """Answered results of other runs for the same requests, newest first wins."""
        return {row.request_hash: row for row in self._results(
            """WHERE run_id <> ? AND error IS NULL AND request_hash IN (SELECT unnest(?::VARCHAR[]))
               QUALIFY row_number() OVER (PARTITION BY request_hash ORDER BY created_at DESC) = 1""",
            [run_id, list(set(request_hashes))])}

    def results(self, run_id: str) -> list[ResultRow]:
        return self._results("WHERE run_id = ? ORDER BY item_id, language, sample", [run_id])

    def _results(self, where: str, params: list[Any]) -> list[ResultRow]:
        rows = self._con.execute(f"SELECT {', '.join(ResultRow.__dataclass_fields__)} FROM results {where}", params).fetchall()
        return [ResultRow(*row) for row in rows]

    def answered_cells(self, run_id: str) -> list[LeaderboardRow]:
        """Answered results of a run per (language, level): what a resumed run starts from."""
        rows = self._con.execute(
            f"""SELECT run_id, '', '', language, {LEVEL_SQL},
                      count(*) FILTER (WHERE correct), count(*), 0.0, count(*) FILTER (WHERE pred IS NULL)
               FROM results WHERE run_id = ? AND error IS NULL GROUP BY run_id, language, level""",
            [run_id],
        ).fetchall()
        return [LeaderboardRow(*row) for row in rows]

    def set_ordering(self, run_id: str, ordering: str) -> None:
        self._con.execute("UPDATE runs SET ordering = ? WHERE id = ?", [ordering, run_id])

    def length_history(self, dataset_sha256: str, run_id: str,
                       runs: int = HISTORY_RUNS) -> tuple[list[str], dict[tuple[str, str], float]]:
        """How long each (item, language) took in earlier runs on the same dataset, any model.

        Returns the run ids used (the newest ``runs`` with answers of their own) and, per (item,
        language), the geometric mean over those runs and samples of its length relative to its run's
        median: completion tokens where a run has them for every answer, else latency. 1.0 is a
        typical question, 10.0 one that took ten times as long.
        """
        used = [row[0] for row in self._con.execute(
            """SELECT r.id FROM runs r
               WHERE r.dataset_sha256 = ? AND r.id <> ? AND EXISTS (
                   SELECT 1 FROM results x WHERE x.run_id = r.id AND x.error IS NULL AND x.reused_from IS NULL
                   AND coalesce(x.completion_tokens, x.latency_s) > 0)
               ORDER BY r.created_at DESC, r.id LIMIT ?""",
            [dataset_sha256, run_id, runs],
        ).fetchall()]
        if not used:
            return [], {}
        rows = self._con.execute(
            f"""WITH lengths AS (  -- completion tokens where the run has them for every answer, else latency
                   SELECT run_id, item_id, language, CASE WHEN count(completion_tokens) OVER w = count(*) OVER w
                          THEN completion_tokens::DOUBLE ELSE latency_s END AS length
                   FROM results WHERE run_id IN ({IDS}) AND error IS NULL AND reused_from IS NULL
                   WINDOW w AS (PARTITION BY run_id)
               ), relative AS (
                   SELECT item_id, language, length / median(length) OVER (PARTITION BY run_id) AS x
                   FROM lengths WHERE length > 0
               )
               SELECT item_id, language, exp(avg(ln(x))) FROM relative GROUP BY item_id, language""",
            [used],
        ).fetchall()
        return used, {(item, language): float(x) for item, language, x in rows}

    # --- dispatcher records -----------------------------------------------------------------
    def save_spec(self, run_id: str, spec: str) -> None:
        self._con.execute("INSERT OR REPLACE INTO run_specs VALUES (?, ?)", [run_id, spec])

    def load_spec(self, run_id: str) -> str | None:
        row = self._con.execute("SELECT spec FROM run_specs WHERE run_id = ?", [run_id]).fetchone()
        return row[0] if row else None

    def save_upload(self, sha256: str, name: str, records: str) -> None:
        self._con.execute(
            "INSERT OR IGNORE INTO uploaded_datasets VALUES (?, ?, ?, ?)", [sha256, name, records, datetime.now()]
        )

    def load_upload(self, sha256: str) -> tuple[str, str] | None:
        row = self._con.execute("SELECT name, records FROM uploaded_datasets WHERE sha256 = ?", [sha256]).fetchone()
        return (row[0], row[1]) if row else None

    # --- leaderboard ------------------------------------------------------------------------
    def require_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """The runs named, in order; an unknown id is bad input naming every unknown one."""
        found = {run.id: run for run in self.list_runs() if run.id in set(run_ids)}
        unknown = [run_id for run_id in run_ids if run_id not in found]
        if unknown:
            raise NotFound(f"no run with id {', '.join(repr(u) for u in unknown)} in {self.path}", field="run_ids")
        return [found[run_id] for run_id in run_ids]

    def leaderboard(self, run_ids: str | Sequence[str] | None = None,
                    include_incomplete: bool = False) -> list[LeaderboardRow]:
        """Rows per (run, language, level) with Wilson intervals and, for sampled runs, sample figures."""
        ids = [run_ids] if isinstance(run_ids, str) else list(dict.fromkeys(run_ids or ()))
        if ids:
            self.require_runs(ids)
        chosen, params = chosen_runs_sql(ids or None, include_incomplete)
        cursor = self._con.execute(leaderboard_sql(chosen), params)
        names = [column[0] for column in cursor.description]
        board: list[LeaderboardRow] = []
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            row["ci_low"], row["ci_high"] = wilson(row["correct"], row["total"])
            row["reliability"] = tuple(ReliabilityBin(**b) for b in row["reliability"] or ())
            board.append(LeaderboardRow(**row))
        if ids:  # runs named: in the order given (the paper layout's column groups follow it)
            position = {run_id: index for index, run_id in enumerate(ids)}
            board.sort(key=lambda row: position[row.run_id])
        return board

    # --- item-level reads (compare, report, export) -----------------------------------------
    def outcomes(self, run_id: str) -> list[tuple[Any, ...]]:
        """(item_id, language, sample, level, answer, pred, outcome, pred_rules, elicited) of every stored
        result of a run: an :class:`~anesbench.analysis.compare.Outcome`'s fields."""
        self.require_results(run_id)
        return self._con.execute(
            f"SELECT item_id, language, sample, level, answer, pred, {OUTCOME_SQL}, "
            "CASE WHEN method_rules IS NULL THEN pred ELSE pred_rules END, coalesce(method = 'elicited', false) "
            "FROM results WHERE run_id = ? ORDER BY item_id, language, sample",
            [run_id],
        ).fetchall()

    def export_to(self, run_id: str, fmt: str, path: str) -> None:
        """Write one row per result with DuckDB's own COPY (streams; nothing is held in Python)."""
        self.require_results(run_id)
        with export_settings(self._con):
            self._con.execute(copy_statement(run_id, fmt, path))

    def iter_export(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every export row of a run as a dict, read in Arrow batches (storage order, flat memory)."""
        self.require_results(run_id)
        with export_settings(self._con):
            reader = self._con.execute(f"{SELECT_EXPORT} WHERE run_id = ?", [run_id]).to_arrow_reader(2000)
            for batch in reader:
                yield from batch.to_pylist()

    def export_page(self, run_id: str, after: tuple[str, str, int] | None, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` export rows after the key ``after`` (item_id, language, sample), in key order."""
        start = after or ("", "", -1)  # before every key: samples count from 0
        return self._con.execute(f"{SELECT_EXPORT} WHERE run_id = ? AND (item_id, language, sample) > (?, ?, ?) "
                                 f"ORDER BY item_id, language, sample LIMIT {int(limit)}", [run_id, *start]).fetchall()

    # --- deltas: a completed run against the newest earlier pairable run of its series (SERIES) --------
    def delta_base(self, run_id: str) -> str | None:
        """The id of the run ``run_id`` is to be paired with; None when it is not pairable or first of its series
        (a configuration change starts a new series, never compared across)."""
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

    # --- report ---------------------------------------------------------------------------
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

    # --- retention and backups (see the module's docstring) ---------------------------------
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
                f"SELECT id FROM runs WHERE id IN ({IDS}) AND pruned_at IS NULL ORDER BY id",
                [run_ids]).fetchall()]
        if not run_ids:
            return PruneOutcome(run_ids, keep_aggregates, before, file_bytes(self.path))
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
        self._compact()
        return PruneOutcome(run_ids, keep_aggregates, before, file_bytes(self.path))

    def backup_to(self, out: str) -> None:
        """Write a consistent copy of the whole store to the new DuckDB file ``out`` (it must not exist)."""
        if Path(out).exists():
            raise InvalidInput(f"{out} exists", field="out")
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
            self.backup_to(fresh)
        except BaseException:
            Path(fresh).unlink(missing_ok=True)  # e.g. the volume is full: the old file stays, pruned
            raise
        self._con.close()
        os.replace(fresh, self.path)
        self._con = duckdb.connect(self.path)
        self._con.execute("SET threads = 1")
