"""``leaderboard --layout paper``: the AnesBench README's table.

One row per model; per dataset (and language, when a dataset was asked in more than one) a group of
columns system1, system1.x, system2, Overall, in the order the datasets first appear; then
``Average``, the mean of the groups' overall accuracies (``-`` for a model missing a group); ``Elicited``,
the answers the follow-up turn gave, and ``Average strict``, the same mean by the rules alone. When some run
has calibration figures, each group also gets its overall ``Brier`` and ``ECE`` after ``Overall``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from anesbench.leaderboard.labels import CALIBRATION, INCOMPLETE_NOTE, calibration_shown, is_incomplete, model_label
from anesbench.leaderboard.table import grid
from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow

HEADER_LEVEL = {"system1": "system1", "system1.x": "system1.x", "system2": "system2", "overall": "Overall"}


def _groups(rows: Sequence[LeaderboardRow]) -> list[tuple[str, str]]:
    """(dataset, language) column groups in order of first appearance."""
    languages: dict[str, list[str]] = {}
    for row in rows:
        seen = languages.setdefault(row.dataset, [])
        if row.language not in seen:
            seen.append(row.language)
    return [(dataset, language) for dataset, langs in languages.items() for language in langs]


class _Line:
    """One model's row of the table: the runs it shows, one per column group."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.runs: dict[tuple[str, str], str] = {}  # column group -> run id
        self.cells: dict[tuple[str, str, str], LeaderboardRow] = {}

    def takes(self, group: tuple[str, str], run_id: str) -> bool:
        return self.runs.setdefault(group, run_id) == run_id


def _lines(rows: Sequence[LeaderboardRow]) -> list[_Line]:
    """A line per model label; a second run of the same label and group (e.g. another sha256 of a
    dataset with the same name) gets a line of its own, labelled with its run ids, never a silent overwrite."""
    lines: list[_Line] = []
    for row in rows:
        label, group = model_label(row), (row.dataset, row.language)
        line = next((line for line in lines if line.label == label and line.takes(group, row.run_id)), None)
        if line is None:
            line = _Line(label)
            line.takes(group, row.run_id)
            lines.append(line)
        line.cells[(row.dataset, row.language, row.level)] = row
    shared = {line.label for line in lines if sum(other.label == line.label for other in lines) > 1}
    for line in lines:
        if line.label in shared:
            line.label = f"{line.label} (run {', '.join(dict.fromkeys(line.runs.values()))})"
    return lines


def paper_table(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str | None]], bool]:
    """Header, lines (None: no value) and whether a line is flagged incomplete.

    ``Average`` is the mean of the line's overall accuracies over every column group; a model without
    a graded overall in some group has no Average (``-``): a mean over fewer datasets is another number.
    """
    groups = _groups(rows)
    calibrated = calibration_shown(rows)
    several = {dataset for dataset, _ in groups if sum(1 for d, _ in groups if d == dataset) > 1}
    header = ["LLM"]
    for dataset, language in groups:
        name = f"{dataset} {language}" if dataset in several else dataset
        header += [f"{name} {HEADER_LEVEL[level]}" for level in LEVEL_ORDER]
        header += [f"{name} {CALIBRATION[figure]}" for figure in calibrated]
    header += ["Average", "Elicited", "Average strict"]
    body: list[list[str | None]] = []
    for line in _lines(rows):
        values: list[str | None] = [line.label]
        overall: list[float] = []
        strict: list[float] = []
        elicited = 0
        for dataset, language in groups:
            for level in LEVEL_ORDER:
                found = line.cells.get((dataset, language, level))
                graded = found is not None and found.total > 0
                values.append(f"{found.accuracy:.2f}" if found is not None and graded else None)
                if found is not None and graded and level == "overall":
                    overall.append(found.accuracy)
                    strict.append(found.accuracy_strict)
                    elicited += found.elicited
            for figure in calibrated:
                found = line.cells.get((dataset, language, "overall"))
                value = getattr(found, figure) if found is not None else None
                values.append(None if value is None else f"{value:.3f}")
        complete = len(overall) == len(groups)
        values.append(f"{sum(overall) / len(overall):.2f}" if complete else None)
        values.append(str(elicited) if overall else None)
        values.append(f"{sum(strict) / len(strict):.2f}" if complete else None)
        body.append(values)
    return header, body, any(is_incomplete(row) for row in rows)


def render_paper(rows: Sequence[LeaderboardRow], fmt: str) -> str:
    header, body, flagged = paper_table(rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if value is None else value for value in line] for line in body])
        return out.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(header, line, strict=True)) for line in body], ensure_ascii=False, indent=2)
    if not body:
        return "no completed runs yet (--include-incomplete shows the others)"
    text = grid(header, body, fmt, numbers_from=1)
    return f"{text}\n\n{INCOMPLETE_NOTE}" if flagged else text
