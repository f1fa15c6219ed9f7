"""What the report shows, read once from a result source: runs, board rows, per-run result summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anesbench.analysis import Comparison, RulesAgreement, compare_runs, language_agreement, rules_agreement
from anesbench.analysis.compare import AgreementCell
from anesbench.analysis.source import ResultSource
from anesbench.dataset import Dataset, FieldMap, Item, load_dataset
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.report_reads import RunFigures, TrendPoint

WRONG_SHOWN = 200  # per run: the page stays readable and small; the export has them all
RUNS_LISTED = 10  # runs with their own tables, figures and lists: the first of the board's, so any store fits
COMPARED = 3  # runs the first is compared with


@dataclass(slots=True)
class RunSummary:
    run: RunRecord
    figures: RunFigures
    agreement: list[AgreementCell] | None = None  # runs with both languages
    rules: RulesAgreement | None = None  # runs elicited for every reply


@dataclass(slots=True)
class ReportData:
    runs: list[RunSummary]  # the listed ones
    runs_total: int  # on the report, listed or not
    board: list[LeaderboardRow]
    comparisons: list[tuple[RunRecord, RunRecord, Comparison]]  # the first run against up to COMPARED more
    trend: list[TrendPoint]
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
    listed = runs[:RUNS_LISTED]
    figures, trend = source.report_figures([run.id for run in listed], WRONG_SHOWN)
    summaries = [RunSummary(run, found) for run, found in zip(listed, figures, strict=True)]
    return ReportData(summaries, len(runs), board, _analyse(source, summaries), trend, questions)


def _analyse(source: ResultSource, summaries: Sequence[RunSummary]) -> list[tuple[RunRecord, RunRecord, Comparison]]:
    """The analyses that pair items, run by run, so that at most two runs' results are held at once."""
    first = summaries[0].run
    first_outcomes = source.outcomes(first.id)
    comparisons: list[tuple[RunRecord, RunRecord, Comparison]] = []
    for summary in summaries:
        run = summary.run
        compared = run.id != first.id and run.dataset_sha256 == first.dataset_sha256 and len(comparisons) < COMPARED
        if not (compared or {"en", "zh"} <= set(run.languages) or run.elicit == "all"):
            continue
        found = first_outcomes if run.id == first.id else source.outcomes(run.id)
        if compared:
            comparisons.append((first, run, compare_runs(first, first_outcomes, run, found)))
        if {"en", "zh"} <= set(run.languages):
            summary.agreement = language_agreement(run, found)
        if run.elicit == "all":
            summary.rules = rules_agreement(run.id, found)
    return comparisons
