"""What ``anesbench export`` writes: one row per result, the same columns for every format and transport."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb

from anesbench.store.leaderboard_sql import LEVEL_SQL, OUTCOME_SQL

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


def export_sql(run_id: str, fmt: str, path: str) -> str:
    """A COPY statement, rows in storage order (COPY takes no parameters, so values are quoted here)."""
    return (f"COPY ({SELECT_EXPORT} WHERE run_id = {_literal(run_id)}) TO {_literal(path)} "
            f"({_COPY_OPTIONS[fmt]})")
