"""Render leaderboard rows and run lists as table, JSON, CSV or Markdown (tables through ``tabulate``).

The table and Markdown follow the AnesBench paper: one row per model (and language), one column
per level plus overall, each accuracy with its 95 % Wilson half-width; then how many answers the
follow-up turn gave (``elicited``) and the overall accuracy of the rules alone (``strict``), and the overall
calibration (``brier``, ``ece``) when some run has it. JSON and CSV are the flat rows
of the CLI contract (``ci_low``/``ci_high`` instead of ±).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from anesbench.leaderboard.labels import CALIBRATION, INCOMPLETE_NOTE, calibration_shown, is_incomplete, model_label
from anesbench.leaderboard.paper import render_paper
from anesbench.leaderboard.table import grid
from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow
from anesbench.store.records import RunRecord

FORMATS = ("table", "json", "csv", "markdown")
JSON_FIELDS = (
    "run_id", "model", "dataset", "language", "level", "correct", "total", "accuracy", "unanswered",
    "errors", "ci_low", "ci_high", "status", "prompt_template", "prompt_sha256", "max_tokens", "temperature",
    "samples", "mean_accuracy", "majority_accuracy", "agreement", "item_limit", "elicit", "elicited",
    "accuracy_strict", "brier", "ece", "scoring",
)


def cell(row: LeaderboardRow) -> str:
    """``0.62 ±0.05``: accuracy and the half-width of its 95 % Wilson interval; ``-`` with no graded answer."""
    if row.total == 0:
        return "-"
    return f"{row.accuracy:.2f} ±{(row.ci_high - row.ci_low) / 2:.2f}"


def _figure(row: LeaderboardRow | None, name: str) -> str:
    value = getattr(row, name) if row else None
    return "-" if value is None else f"{value:.3f}"


def _pivot(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str]], bool]:
    sampled = any(row.samples > 1 for row in rows)
    calibrated = calibration_shown(rows)
    header = ["model", "dataset", "lang", *LEVEL_ORDER, "n", "unanswered", "elicited", "strict", "errors", "status",
              "run"]
    if sampled:
        header[-1:-1] = ["mean acc", "majority", "agree"]
    header[-1:-1] = [CALIBRATION[name] for name in calibrated]
    grouped: dict[tuple[str, str, str, str], dict[str, LeaderboardRow]] = {}
    for row in rows:
        grouped.setdefault((model_label(row), row.dataset, row.language, row.run_id), {})[row.level] = row
    body: list[list[str]] = []
    flagged = False
    for (label, dataset, language, run_id), cells in grouped.items():
        overall = cells.get("overall")
        flagged = flagged or (overall is not None and is_incomplete(overall))
        line = [
            label, dataset, language,
            *(cell(cells[level]) if level in cells else "-" for level in LEVEL_ORDER),
            str(overall.total if overall else 0), str(overall.unanswered if overall else 0),
            str(overall.elicited if overall else 0),
            f"{overall.accuracy_strict:.2f}" if overall and overall.total else "-",
            str(overall.errors if overall else 0), overall.status if overall else "-", run_id,
        ]
        if sampled:
            figures = [getattr(overall, name) if overall else None
                       for name in ("mean_accuracy", "majority_accuracy", "agreement")]
            line[-1:-1] = ["-" if value is None else f"{value:.2f}" for value in figures]
        line[-1:-1] = [_figure(overall, name) for name in calibrated]
        body.append(line)
    return header, body, flagged


def _flat(rows: Sequence[LeaderboardRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{k: asdict(row)[k] for k in JSON_FIELDS} for row in rows], ensure_ascii=False, indent=2)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JSON_FIELDS)
    for row in rows:
        writer.writerow(["" if getattr(row, k) is None else getattr(row, k) for k in JSON_FIELDS])
    return out.getvalue().rstrip("\n")


def render_leaderboard(rows: Sequence[LeaderboardRow], fmt: str, layout: str = "rows") -> str:
    if layout == "paper":
        return render_paper(rows, fmt)
    if fmt in ("json", "csv"):
        return _flat(rows, fmt)
    if not rows:
        return "no completed runs yet (--include-incomplete shows the others)"
    header, body, flagged = _pivot(rows)
    text = grid(header, body, fmt)
    return f"{text}\n\n{INCOMPLETE_NOTE}" if flagged else text


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "-"


def _short(error: str | None, width: int = 100) -> str:
    """An error on one table line (the whole text is in --format json)."""
    if not error:
        return ""
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run as ``runs --format json`` prints it: progress plus the validity record."""
    return {
        "id": run.id, "model": run.model, "dataset": run.dataset_name, "languages": list(run.languages),
        "status": run.status, "done": run.done, "total": run.total, "failed": run.failed,
        "correct": run.correct, "endpoint": run.endpoint, "prompt_template": run.prompt_template,
        "started": run.started_at.isoformat() if run.started_at else None,
        "finished": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
        "dataset_sha256": run.dataset_sha256, "prompt_sha256": run.prompt_sha256, "max_tokens": run.max_tokens,
        "temperature": run.temperature, "samples": run.samples, "harness_version": run.harness_version,
        "extractor_version": run.extractor_version, "elicit": run.elicit, "elicit_prompt": run.elicit_prompt,
        "elicit_prompt_sha256": run.elicit_prompt_sha256, "elicit_constraint": run.elicit_constraint,
        "delta": run.delta, "delta_pvalue": run.delta_pvalue,
        "scoring": run.scoring,
    }


def render_runs(runs: Sequence[RunRecord], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([run_json(run) for run in runs], ensure_ascii=False, indent=2)
    if not runs:
        return "no runs yet"
    header = ["id", "model", "dataset", "languages", "status", "done/total", "failed", "started", "finished",
              "delta", "p", "error"]
    body = [
        [run.id, run.model, run.dataset_name, ",".join(run.languages), run.status, f"{run.done}/{run.total}",
         str(run.failed), _when(run.started_at), _when(run.finished_at),
         "" if run.delta is None else f"{run.delta:+.3f}", "" if run.delta_pvalue is None else f"{run.delta_pvalue:.2g}",
         _short(run.error)]
        for run in runs
    ]
    return grid(header, body, "table")
