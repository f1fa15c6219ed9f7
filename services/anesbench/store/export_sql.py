"""What ``anesbench export`` writes: one row per result, the same columns for every format and transport."""

from __future__ import annotations

from anesbench.store.leaderboard_sql import LEVEL_SQL, OUTCOME_SQL

EXPORT_FORMATS = ("jsonl", "csv", "parquet")

# (output name, SQL expression over the results table), in output order.
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item_id", "item_id"),
    ("language", "language"),
    ("level", LEVEL_SQL),
    ("sample", "sample"),
    ("gold", "answer"),
    ("predicted", "pred"),
    ("method", "method"),
    ("outcome", OUTCOME_SQL),
    ("correct", "correct"),
    ("response", "response"),
    ("reasoning", "reasoning"),
    ("finish_reason", "finish_reason"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("latency_s", "latency_s"),
    ("attempts", "attempts"),
    ("error", "error"),
)
EXPORT_NAMES = tuple(name for name, _ in EXPORT_COLUMNS)

_COPY_OPTIONS = {"jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def export_sql(run_id: str, fmt: str, path: str) -> str:
    """A COPY statement (COPY takes no parameters, so values are quoted here)."""
    columns = ", ".join(f'{expr} AS "{name}"' for name, expr in EXPORT_COLUMNS)
    return (f"COPY (SELECT {columns} FROM results WHERE run_id = {_literal(run_id)} "
            f"ORDER BY item_id, language, sample) TO {_literal(path)} ({_COPY_OPTIONS[fmt]})")
