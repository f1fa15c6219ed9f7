"""What ``anesbench export`` writes: one row per result, the same columns for every format and transport.

:class:`RowWriter` takes export rows one by one (from a dispatcher stream, or to stdout). The embedded
command with ``--out`` lets DuckDB ``COPY`` write the file instead; the writer produces the same
columns, and the same JSON/CSV spelling of values (``null``/empty, ``true``/``false``). A file is
written whole or not at all: a temporary file beside the target, renamed when complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from anesbench.errors import InvalidInput
from anesbench.store.leaderboard_sql import LEVEL_SQL, OUTCOME_SQL
from anesbench.store.schema import SCHEMA

EXPORT_NAMES = (
    "item_id", "language", "level", "sample", "gold", "predicted", "method", "outcome", "correct", "response",
    "reasoning", "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "attempts", "error", "elicited",
    "pred_rules", "method_rules", "elicitation", "elicitation_params", "elicitation_response", "elicitation_error",
    "elicitation_attempts", "elicitation_latency_s", "elicitation_prompt_tokens", "elicitation_completion_tokens",
    "letter_probs", "letter_probs_complete",
)
_COMPUTED = {
    "level": LEVEL_SQL,
    "gold": "answer",
    "predicted": "pred",
    "outcome": OUTCOME_SQL,
    "elicited": "coalesce(method = 'elicited', false)",
    "pred_rules": "CASE WHEN method_rules IS NULL THEN pred ELSE pred_rules END",
    "method_rules": "coalesce(method_rules, method)",
}
# (output name, SQL expression over the results table), in output order; other columns are the stored ones.
EXPORT_COLUMNS = tuple((name, _COMPUTED.get(name, name)) for name in EXPORT_NAMES)

_COPY_OPTIONS = {"jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet, ROW_GROUP_SIZE 8192"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


SELECT_EXPORT = "SELECT " + ", ".join(f'{expr} AS "{name}"' for name, expr in EXPORT_COLUMNS) + " FROM results"

# DuckDB keeps the blocks it reads in its buffer pool up to its memory limit (80 % of RAM by default),
# so an export would grow with the run; capped, one thread, no order kept: memory stays flat.
EXPORT_SETTINGS = {"memory_limit": "'64MB'", "threads": "1", "preserve_insertion_order": "false"}


@contextlib.contextmanager
def export_settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    for name, value in EXPORT_SETTINGS.items():
        con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        for name in EXPORT_SETTINGS:
            con.execute(f"RESET {name}")


def copy_statement(run_id: str, fmt: str, path: str) -> str:
    """A COPY statement, rows in storage order (COPY takes no parameters, so values are quoted here)."""
    return (f"COPY ({SELECT_EXPORT} WHERE run_id = {_literal(run_id)}) TO {_literal(path)} "
            f"({_COPY_OPTIONS[fmt]})")


class RowWriter:
    """Export rows to ``out`` one by one as JSON Lines, CSV or Parquet (in batches of BATCH rows)."""

    BATCH = 2000

    def __init__(self, fmt: str, out: IO[bytes]) -> None:
        self.fmt, self.out = fmt, out
        self.rows: list[dict[str, Any]] = []  # Parquet's batch
        if fmt == "parquet":
            with duckdb.connect() as con:  # the types DuckDB's own COPY writes
                con.execute(SCHEMA)
                self.schema = con.execute(f"{SELECT_EXPORT} LIMIT 0").to_arrow_table().schema
            self.parquet = pq.ParquetWriter(out, self.schema)
        elif fmt == "csv":
            self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            self.csv = csv.writer(self.text, lineterminator="\n")
            self.csv.writerow(EXPORT_NAMES)

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        elif self.fmt == "csv":
            self.csv.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v)
                               for v in row.values()])
        else:
            self.rows.append(row)
            if len(self.rows) >= self.BATCH:
                self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.parquet.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        if self.fmt == "parquet":
            self._flush()
            self.parquet.close()
        elif self.fmt == "csv":
            self.text.detach()  # flushes, and leaves ``out`` open
        else:
            self.out.flush()


def check_target(path: str, force: bool) -> Path:
    """Bad input about ``out`` (before anything is read or written) when the file exists without ``force``,
    or its folder is missing."""
    target = Path(path)
    if target.exists() and not force:
        raise InvalidInput(f"{path} already exists; pass {{force}} to replace it", field="out", mentions=("force",))
    if target.exists() and target.is_dir():
        raise InvalidInput(f"{path} is a directory", field="out")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist", field="out")
    return target


@contextlib.contextmanager
def atomic_output(path: str, force: bool) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed."""
    target = check_target(path, force)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    os.unlink(temporary)  # writers (DuckDB COPY) create the file themselves
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
