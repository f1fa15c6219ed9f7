"""The leaderboard and the run list as table, JSON, CSV or Markdown (tables through ``tabulate``).

Layout ``rows`` (the paper's cells): one row per model, dataset and language; per level and overall the accuracy
with its 95 % Wilson half-width, then the answers the follow-up turn gave (``elicited``), the overall accuracy of
the rules alone (``strict``) and the calibration (``brier``, ``ece``) when some run has it. Its JSON and CSV are
the flat rows of the CLI contract (``ci_low``/``ci_high`` instead of ±).

Layout ``paper`` (the AnesBench README's table): one row per model; per dataset (and language, when a dataset
was asked in more than one) the columns system1, system1.x, system2, Overall (and Brier, ECE); then ``Average``,
``Elicited`` and ``Average strict`` over the groups. A run not in the paper's configuration is named with it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from tabulate import tabulate

from anesbench.defaults import DEFAULT_MAX_TOKENS, DEFAULT_SAMPLES, DEFAULT_SCORING, DEFAULT_TEMPERATURE, default_elicit
from anesbench.prompts import load_template
from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow
from anesbench.store.records import RunRecord

JSON_FIELDS = (
    "run_id", "model", "dataset", "language", "level", "correct", "total", "accuracy", "unanswered",
    "errors", "ci_low", "ci_high", "status", "prompt_template", "prompt_sha256", "max_tokens", "temperature",
    "samples", "mean_accuracy", "majority_accuracy", "agreement", "item_limit", "elicit", "elicited",
    "accuracy_strict", "brier", "ece", "scoring",
)
CALIBRATION = {"brier": "Brier", "ece": "ECE"}  # row field -> column title
PAPER_LEVELS = {"system1": "system1", "system1.x": "system1.x", "system2": "system2", "overall": "Overall"}
INCOMPLETE_NOTE = "* run not completed or with errors (shown by --include-incomplete or --run): not a headline number"
NO_RUNS = "no completed runs yet (--include-incomplete shows the others)"

Body = list[list[str | None]]  # None: no value ("-" in a table, empty in CSV, null in JSON)


@cache
def _default_template(scoring: str) -> tuple[str, str]:
    template = load_template(None, scoring=scoring)
    return template.name, template.sha256


def configuration_note(row: LeaderboardRow) -> str:
    """``""`` for the paper's configuration, else e.g. ``"max_tokens=512, T=0.7, prompt=mine@1a2b3c4d"``."""
    parts = [f"scoring={row.scoring}"] if row.scoring != DEFAULT_SCORING else []
    if row.max_tokens and row.max_tokens != DEFAULT_MAX_TOKENS:
        parts.append(f"max_tokens={row.max_tokens}")
    if row.temperature != DEFAULT_TEMPERATURE:
        parts.append(f"T={row.temperature:g}")
    if row.samples != DEFAULT_SAMPLES:
        parts.append(f"samples={row.samples}")
    if row.prompt_sha256 and row.prompt_sha256 != _default_template(row.scoring)[1]:
        parts.append(f"prompt={row.prompt_template}@{row.prompt_sha256[:8]}")
    if row.item_limit is not None:
        parts.append(f"first {row.item_limit} items only")
    if row.elicit != default_elicit(row.scoring):
        parts.append(f"elicit={row.elicit}")
    return ", ".join(parts)


def calibration_shown(rows: Sequence[LeaderboardRow]) -> list[str]:
    """The calibration fields some row has: a board of generative runs alone shows none."""
    return [name for name in CALIBRATION if any(getattr(row, name) is not None for row in rows)]


def is_incomplete(row: LeaderboardRow) -> bool:
    """Not a headline number: the run did not complete, or some items never got a usable response."""
    return row.status != "completed" or row.errors > 0


def model_label(row: LeaderboardRow) -> str:
    note = configuration_note(row)
    label = f"{row.model} [{note}]" if note else row.model
    return f"* {label}" if is_incomplete(row) else label


def grid(header: Sequence[str], body: Sequence[Sequence[Any]], fmt: str, *, numbers_from: int | None = None) -> str:
    """A table as plain text (``table``) or GitHub Markdown (``markdown``); None shows as ``-``.

    Columns from ``numbers_from`` on are numbers (right-aligned, two decimals); by default none are.
    """
    text_columns = list(range(len(header) if numbers_from is None else numbers_from))
    return tabulate(body, headers=list(header), tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=text_columns or False, stralign="left", floatfmt=".2f", missingval="-")


def _figure(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def render_leaderboard(rows: Sequence[LeaderboardRow], fmt: str, layout: str = "rows") -> str:
    body: Sequence[Sequence[Any]]
    if layout == "paper":
        header, body, flagged = paper_table(rows)
    elif fmt in ("json", "csv"):  # the flat rows of the CLI contract
        header, body, flagged = list(JSON_FIELDS), [[getattr(row, k) for k in JSON_FIELDS] for row in rows], False
    else:
        header, body, flagged = _pivot(rows)
    if fmt == "json":
        return json.dumps([dict(zip(header, line, strict=True)) for line in body], ensure_ascii=False, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *(["" if v is None else v for v in line] for line in body)])
        return out.getvalue().rstrip("\n")
    if not body:
        return NO_RUNS
    text = grid(header, body, fmt, numbers_from=1 if layout == "paper" else None)
    return f"{text}\n\n{INCOMPLETE_NOTE}" if flagged else text


def _cell(row: LeaderboardRow) -> str | None:
    """``0.62 ±0.05``: accuracy and the half-width of its 95 % Wilson interval; None with no graded answer."""
    return f"{row.accuracy:.2f} ±{(row.ci_high - row.ci_low) / 2:.2f}" if row.total else None


def _pivot(rows: Sequence[LeaderboardRow]) -> tuple[list[str], Body, bool]:
    sampled = any(row.samples > 1 for row in rows)
    calibrated = calibration_shown(rows)
    header = ["model", "dataset", "lang", *LEVEL_ORDER, "n", "unanswered", "elicited", "strict", "errors", "status",
              *(["mean acc", "majority", "agree"] if sampled else []), *(CALIBRATION[name] for name in calibrated), "run"]
    grouped: dict[tuple[str, str, str, str], dict[str, LeaderboardRow]] = {}
    for row in rows:
        grouped.setdefault((model_label(row), row.dataset, row.language, row.run_id), {})[row.level] = row
    body: Body = []
    flagged = False
    for (label, dataset, language, run_id), cells in grouped.items():
        overall = cells.get("overall")
        flagged = flagged or (overall is not None and is_incomplete(overall))
        line = [label, dataset, language, *(_cell(cells[level]) if level in cells else None for level in LEVEL_ORDER)]
        if overall is None:
            line += ["0", "0", "0", None, "0", None]
        else:
            line += [str(overall.total), str(overall.unanswered), str(overall.elicited),
                     _figure(overall.accuracy_strict, 2) if overall.total else None, str(overall.errors), overall.status]
        if sampled:
            line += [_figure(getattr(overall, name, None), 2) for name in ("mean_accuracy", "majority_accuracy", "agreement")]
        line += [_figure(getattr(overall, name, None)) for name in calibrated]
        body.append([*line, run_id])
    return header, body, flagged


def _groups(rows: Sequence[LeaderboardRow]) -> list[tuple[str, str]]:
    """(dataset, language) column groups: datasets in order of first appearance, each with its languages."""
    pairs = list(dict.fromkeys((row.dataset, row.language) for row in rows))
    datasets = list(dict.fromkeys(dataset for dataset, _ in pairs))
    return sorted(pairs, key=lambda pair: datasets.index(pair[0]))


@dataclass(slots=True)
class _Line:
    """One model's row of the paper table: the runs it shows, one per column group."""

    label: str
    runs: dict[tuple[str, str], str]  # column group -> run id
    cells: dict[tuple[str, str, str], LeaderboardRow] = field(default_factory=dict)


def _lines(rows: Sequence[LeaderboardRow]) -> list[_Line]:
    """A line per model label; a second run of the same label and group (e.g. another sha256 of a
    dataset with the same name) gets a line of its own, labelled with its run ids, never a silent overwrite."""
    lines: list[_Line] = []
    for row in rows:
        label, group = model_label(row), (row.dataset, row.language)
        line = next((line for line in lines if line.label == label
                     and line.runs.setdefault(group, row.run_id) == row.run_id), None)
        if line is None:
            line = _Line(label, {group: row.run_id})
            lines.append(line)
        line.cells[(row.dataset, row.language, row.level)] = row
    shared = {line.label for line in lines if sum(other.label == line.label for other in lines) > 1}
    for line in lines:
        if line.label in shared:
            line.label = f"{line.label} (run {', '.join(dict.fromkeys(line.runs.values()))})"
    return lines


def paper_table(rows: Sequence[LeaderboardRow]) -> tuple[list[str], Body, bool]:
    """Header, lines and whether a line is flagged incomplete, of layout ``paper``.

    A model without a graded overall in some group has no Average: a mean over fewer datasets is another number.
    """
    groups = _groups(rows)
    calibrated = calibration_shown(rows)
    several = {dataset for dataset, _ in groups if sum(1 for d, _ in groups if d == dataset) > 1}
    header = ["LLM"]
    for dataset, language in groups:
        name = f"{dataset} {language}" if dataset in several else dataset
        header += [f"{name} {PAPER_LEVELS[level]}" for level in LEVEL_ORDER]
        header += [f"{name} {CALIBRATION[figure]}" for figure in calibrated]
    header += ["Average", "Elicited", "Average strict"]
    body: Body = []
    for line in _lines(rows):
        values: list[str | None] = [line.label]
        overall: list[LeaderboardRow] = []
        for dataset, language in groups:
            for level in LEVEL_ORDER:
                found = line.cells.get((dataset, language, level))
                graded = found if found is not None and found.total > 0 else None
                values.append(_figure(graded.accuracy, 2) if graded else None)
                if graded and level == "overall":
                    overall.append(graded)
            found = line.cells.get((dataset, language, "overall"))
            values += [_figure(getattr(found, figure, None)) for figure in calibrated]
        complete = len(overall) == len(groups)
        values.append(f"{sum(row.accuracy for row in overall) / len(overall):.2f}" if complete else None)
        values.append(str(sum(row.elicited for row in overall)) if overall else None)
        values.append(f"{sum(row.accuracy_strict for row in overall) / len(overall):.2f}" if complete else None)
        body.append(values)
    return header, body, any(is_incomplete(row) for row in rows)


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "-"


def _short(error: str | None, width: int = 100) -> str:
    """An error on one table line (the whole text is in --format json)."""
    if not error:
        return ""
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 3] + "..."


# ``runs --format json``: progress plus the validity record; key -> RunRecord attribute where they differ
RUN_KEYS = ("id", "model", "dataset", "languages", "status", "done", "total", "failed", "correct", "endpoint",
            "prompt_template", "started", "finished", "error", "dataset_sha256", "prompt_sha256", "max_tokens",
            "temperature", "samples", "harness_version", "extractor_version", "elicit", "elicit_prompt",
            "elicit_prompt_sha256", "elicit_constraint", "delta", "delta_pvalue", "scoring")
RUN_ATTRIBUTES = {"dataset": "dataset_name", "started": "started_at", "finished": "finished_at"}


def run_json(run: RunRecord) -> dict[str, Any]:
    found = {key: getattr(run, RUN_ATTRIBUTES.get(key, key)) for key in RUN_KEYS}
    times = {key: found[key] and found[key].isoformat() for key in ("started", "finished")}
    return {**found, **times, "languages": list(run.languages)}


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
