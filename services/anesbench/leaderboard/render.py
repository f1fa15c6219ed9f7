"""Render leaderboard rows and run lists as table, JSON, CSV or Markdown.

The table and Markdown follow the AnesBench paper: one row per model (and language), one column
per level plus overall. JSON and CSV are the flat rows of the CLI contract.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow
from anesbench.store.records import RunRecord

FORMATS = ("table", "json", "csv", "markdown")
JSON_FIELDS = ("run_id", "model", "dataset", "language", "level", "correct", "total", "accuracy", "unanswered")


def _pivot(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "dataset", "lang", *LEVEL_ORDER, "n", "unanswered", "run"]
    grouped: dict[tuple[str, str, str, str], dict[str, LeaderboardRow]] = {}
    for row in rows:
        grouped.setdefault((row.model, row.dataset, row.language, row.run_id), {})[row.level] = row
    body: list[list[str]] = []
    for (model, dataset, language, run_id), cells in grouped.items():
        overall = cells.get("overall")
        body.append([
            model, dataset, language,
            *(f"{cells[level].accuracy:.2f}" if level in cells else "-" for level in LEVEL_ORDER),
            str(overall.total if overall else 0), str(overall.unanswered if overall else 0), run_id,
        ])
    return header, body


def _table(header: list[str], body: list[list[str]], numeric_from: int) -> str:
    widths = [max(len(header[i]), *(len(row[i]) for row in body)) if body else len(header[i]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if numeric_from <= i < len(header) - 1 else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in body)])


def _markdown(header: list[str], body: list[list[str]], numeric_from: int) -> str:
    align = [("---:" if numeric_from <= i < len(header) - 1 else ":---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def render_leaderboard(rows: Sequence[LeaderboardRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{k: asdict(row)[k] for k in JSON_FIELDS} for row in rows], ensure_ascii=False, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(JSON_FIELDS)
        for row in rows:
            writer.writerow([getattr(row, k) for k in JSON_FIELDS])
        return out.getvalue().rstrip("\n")
    if not rows:
        return "no results yet"
    header, body = _pivot(rows)
    return _markdown(header, body, 3) if fmt == "markdown" else _table(header, body, 3)


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "-"


def _short(error: str | None, width: int = 100) -> str:
    """An error on one table line (the whole text is in --format json)."""
    if not error:
        return ""
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def render_runs(runs: Sequence[RunRecord], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([
            {
                "id": run.id, "model": run.model, "dataset": run.dataset_name, "languages": list(run.languages),
                "status": run.status, "done": run.done, "total": run.total, "failed": run.failed,
                "correct": run.correct, "endpoint": run.endpoint, "prompt_template": run.prompt_template,
                "started": run.started_at.isoformat() if run.started_at else None,
                "finished": run.finished_at.isoformat() if run.finished_at else None,
                "error": run.error,
            }
            for run in runs
        ], ensure_ascii=False, indent=2)
    if not runs:
        return "no runs yet"
    header = ["id", "model", "dataset", "languages", "status", "done/total", "failed", "started", "finished",
              "error"]
    body = [
        [run.id, run.model, run.dataset_name, ",".join(run.languages), run.status, f"{run.done}/{run.total}",
         str(run.failed), _when(run.started_at), _when(run.finished_at), _short(run.error)]
        for run in runs
    ]
    return _table(header, body, len(header))
