"""What the report shows, read once from a result source: runs, board rows, per-run result summaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from anesbench.analysis import Outcome
from anesbench.analysis.source import ResultSource, outcome_of
from anesbench.dataset import Dataset, FieldMap, Item, load_dataset
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow

WRONG_SHOWN = 200  # per run: the page stays readable and small; the export has them all


@dataclass(slots=True)
class RunSummary:
    run: RunRecord
    outcomes: list[Outcome] = field(default_factory=list)
    by_outcome: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    completion_tokens: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    wrong: list[dict[str, Any]] = field(default_factory=list)
    wrong_total: int = 0

    def add(self, row: dict[str, Any]) -> None:
        outcome = row["outcome"]
        self.outcomes.append(outcome_of(row))
        self.by_outcome[outcome] += 1
        if outcome != "error":
            self.methods[row["method"] or "(none)"] += 1
        if row["completion_tokens"] is not None:
            self.completion_tokens.append(row["completion_tokens"])
        if row["latency_s"] is not None:
            self.latencies.append(row["latency_s"])
        if outcome in ("wrong", "unanswered"):
            self.wrong_total += 1
            if len(self.wrong) < WRONG_SHOWN:
                self.wrong.append({k: row[k] for k in ("item_id", "language", "level", "sample", "gold", "predicted",
                                                       "method", "response")})


@dataclass(slots=True)
class ReportData:
    runs: list[RunSummary]
    board: list[LeaderboardRow]
    questions: dict[tuple[str, str], Item]  # (dataset sha256, item id) -> item


def _load_any(path: str, fields: FieldMap | None) -> Dataset:
    """A dataset file with both languages, else the one it has (the report only reads texts)."""
    if fields is not None:
        return load_dataset(path, (fields.language,), fields=fields)
    try:
        return load_dataset(path, ("en", "zh"))
    except InvalidInput:
        try:
            return load_dataset(path, ("en",))
        except InvalidInput:
            return load_dataset(path, ("zh",))


def _questions(paths: Sequence[str], runs: Sequence[RunRecord], fields: FieldMap | None) -> dict[tuple[str, str], Item]:
    wanted = {run.dataset_sha256 for run in runs}
    found: dict[tuple[str, str], Item] = {}
    for path in paths:
        dataset = _load_any(path, fields)
        if dataset.sha256 not in wanted:
            raise InvalidInput(f"{path} (sha256 {dataset.sha256[:12]}) is not the dataset of any reported run",
                               field="dataset")
        for item in dataset.items:
            found[(dataset.sha256, item.id)] = item
    return found


def gather(source: ResultSource, run_ids: Sequence[str], dataset_paths: Sequence[str],
           fields: FieldMap | None = None) -> ReportData:
    if run_ids:
        runs = source.runs(run_ids)
        board = source.leaderboard(run_ids)
    else:
        board = source.leaderboard([])
        ids = list(dict.fromkeys(row.run_id for row in board))
        runs = source.runs(ids) if ids else []
    if not any(run.status == "completed" for run in runs):
        where = f"among {{run_ids}} {', '.join(run_ids)}" if run_ids else "in the store"
        raise InvalidInput(f"report: no completed runs {where}; nothing to report", mentions=("run_ids",))
    questions = _questions(dataset_paths, runs, fields)
    summaries = []
    for run in runs:
        summary = RunSummary(run)
        source.scan(run.id, summary.add)
        summaries.append(summary)
    return ReportData(summaries, board, questions)
