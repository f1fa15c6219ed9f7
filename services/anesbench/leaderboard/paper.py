"""``leaderboard --layout paper``: the AnesBench README's table.

One row per model; per dataset (and language, when a dataset was asked in more than one) a group of
columns system1, system1.x, system2, Overall, in the order the datasets first appear; then
``Average``, the mean of the groups' overall accuracies; ``Elicited``, the answers the follow-up turn
gave, and ``Average strict``, the mean of the groups' overall accuracies by the rules alone.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from anesbench.leaderboard.labels import INCOMPLETE_NOTE, is_incomplete, model_label
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


def paper_table(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str | None]], bool]:
    groups = _groups(rows)
    several = {dataset for dataset, _ in groups if sum(1 for d, _ in groups if d == dataset) > 1}
    header = ["LLM"]
    for dataset, language in groups:
        name = f"{dataset} {language}" if dataset in several else dataset
        header += [f"{name} {HEADER_LEVEL[level]}" for level in LEVEL_ORDER]
    header += ["Average", "Elicited", "Average strict"]
    models: dict[str, dict[tuple[str, str, str], LeaderboardRow]] = {}
    flagged = False
    for row in rows:
        models.setdefault(model_label(row), {})[(row.dataset, row.language, row.level)] = row
        flagged = flagged or is_incomplete(row)
    body: list[list[str | None]] = []
    for label, cells in models.items():
        line: list[str | None] = [label]
        overall: list[float] = []
        strict: list[float] = []
        elicited = 0
        for dataset, language in groups:
            for level in LEVEL_ORDER:
                found = cells.get((dataset, language, level))
                line.append(None if found is None or found.total == 0 else f"{found.accuracy:.2f}")
                if found is not None and found.total == 0:
                    continue
                if found is not None and level == "overall":
                    overall.append(found.accuracy)
                    strict.append(found.accuracy_strict)
                    elicited += found.elicited
        line.append(f"{sum(overall) / len(overall):.2f}" if overall else None)
        line.append(str(elicited) if overall else None)
        line.append(f"{sum(strict) / len(strict):.2f}" if strict else None)
        body.append(line)
    return header, body, flagged


def render_paper(rows: Sequence[LeaderboardRow], fmt: str) -> str:
    from anesbench.leaderboard.render import grid

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
