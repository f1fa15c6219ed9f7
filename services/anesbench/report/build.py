"""The report page: what it shows, read once from a result source (runs, board rows, per-run summaries), as HTML.

Every value is HTML-escaped; figures are inline SVG; no script, no URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from html import escape
from typing import Any

from anesbench import __version__
from anesbench.analysis import Comparison, RulesAgreement, compare_runs, language_agreement, rules_agreement
from anesbench.analysis.compare import AgreementCell, ResultSource
from anesbench.dataset import Dataset, FieldMap, Item, load_dataset
from anesbench.errors import InvalidInput
from anesbench.leaderboard import INCOMPLETE_NOTE, paper_table
from anesbench.report import plots
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import RunFigures, TrendPoint

WRONG_SHOWN = 200  # per run: the page stays readable and small; the export has them all
RUNS_LISTED = 10  # runs with their own tables, figures and lists: the first of the board's, so any store fits
COMPARED = 3  # runs the first is compared with
TRENDS_SHOWN = 4  # panels of the trend figure: each costs about a fifth of a second to draw
WRONG_HEADER = ("item", "lang", "level", "question", "options", "gold", "predicted", "method", "reply")


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
    for languages in (("en", "zh"), ("en",)):
        with suppress(InvalidInput):
            return load_dataset(path, languages)
    return load_dataset(path, ("zh",))


def _questions(paths: Sequence[str], runs: Sequence[RunRecord], fields: FieldMap | None) -> dict[tuple[str, str], Item]:
    wanted = {run.dataset_sha256 for run in runs}
    found: dict[tuple[str, str], Item] = {}
    for path in paths:
        dataset = _load_any(path, fields)
        if dataset.sha256 not in wanted:
            raise InvalidInput(f"{path} (sha256 {dataset.sha256[:12]}) is not the dataset of any reported run",
                               field="dataset")
        found.update(((dataset.sha256, item.id), item) for item in dataset.items)
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


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#1a1a1a;
     padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.w{overflow-wrap:anywhere;min-width:8rem}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.85rem}.figure{margin:.8rem 0}.figure svg{max-width:100%;height:auto}
details>summary{cursor:pointer}pre{white-space:pre-wrap;max-width:60rem;background:#fafafa;padding:.4rem;margin:.2rem 0}
code{font-size:.8rem}
"""


def _table(header: Sequence[str], body: Sequence[Sequence[Any]], numeric_from: int = 99,
           wrap: Sequence[int] = (), *, markup: bool = False) -> str:
    """An HTML table; columns from ``numeric_from`` are right-aligned, columns in ``wrap`` break anywhere;
    ``markup``: the cells are HTML already."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(
        f"<td>{v}</td>" if markup else
        f'<td class="{"n" if i >= numeric_from else "w" if i in wrap else "t"}">{escape(_text(v))}</td>'
        for i, v in enumerate(line)
    ) + "</tr>" for line in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _heading(summary: RunSummary) -> str:
    return f"<h3>{escape(summary.run.id)} ({escape(summary.run.model)})</h3>"


def _capped(data: ReportData) -> str:
    """The note under a per-run table or figure when the report holds more runs than it lists."""
    if data.runs_total <= len(data.runs):
        return ""
    return (f'<p class="note">The first {len(data.runs)} of {data.runs_total} runs, in board order '
            "(name runs with --run to see others).</p>")


def _validity(data: ReportData) -> str:
    header = ["run", "model", "status", "dataset", "dataset sha256", "prompt template", "template sha256",
              "max tokens", "temperature", "samples", "scoring", "elicit", "follow-up constraint", "follow-up prompt", "harness",
              "extractor", "endpoint"]
    body = [[s.run.id, s.run.model, s.run.status, s.run.dataset_name, s.run.dataset_sha256, s.run.prompt_template,
             s.run.prompt_sha256, s.run.max_tokens, f"{s.run.temperature:g}", s.run.samples, s.run.scoring, s.run.elicit,
             s.run.elicit_constraint or "-",
             f"{s.run.elicit_prompt}@{s.run.elicit_prompt_sha256[:12]}" if s.run.elicit_prompt_sha256 else "-",
             s.run.harness_version, s.run.extractor_version or "-", s.run.endpoint] for s in data.runs]
    return _table(header, body, wrap=(4, 6, 15)) + _capped(data)


def _board(data: ReportData) -> str:
    header, body, flagged = paper_table(data.board)
    note = f'<p class="note">{escape(INCOMPLETE_NOTE)}</p>' if flagged else ""
    return _table(header, body, numeric_from=1) + note


def _accuracy(data: ReportData) -> str:
    listed = {s.run.id for s in data.runs}
    figure = plots.accuracy_bars([row for row in data.board if row.run_id in listed])
    return f'<div class="figure">{figure}</div>{_capped(data)}'


def _comparisons(data: ReportData) -> str:
    parts: list[str] = []
    for first, other, comparison in data.comparisons:
        if not comparison.cells:
            parts.append(f'<p class="note">{escape(first.id)} vs {escape(other.id)}: no item answered by both '
                         f"({comparison.dropped} pair(s) with an error on either side).</p>")
            continue
        header = ["language", "level", "pairs", f"accuracy {first.id}", f"accuracy {other.id}", "A − B",
                  "95 % CI (paired bootstrap)", "McNemar p", "won", "lost"]
        body = [[c.language, c.level, c.pairs, c.accuracy_a, c.accuracy_b, f"{c.difference:+.3f}",
                 f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]", f"{c.p_value:.3g}", c.won, c.lost] for c in comparison.cells]
        parts.append(f"<h3>A = {escape(first.id)} vs B = {escape(other.id)}</h3>" + _table(header, body, 2)
                     + f'<p class="note">{comparison.dropped} pair(s) dropped for an error on either side.</p>')
    return "".join(parts) or '<p class="note">Needs two runs on the same dataset.</p>'


def _agreement(data: ReportData) -> str:
    parts: list[str] = []
    for summary in data.runs:
        if summary.agreement is not None:
            body = [[c.level, c.pairs, c.same_letter, c.accuracy_en, c.accuracy_zh] for c in summary.agreement]
            header = ["level", "pairs", "same letter en/zh", "accuracy en", "accuracy zh"]
            parts.append(_heading(summary) + _table(header, body, 1))
    return "".join(parts) + _capped(data) if parts else '<p class="note">No run holds both English and Chinese.</p>'


def _rules(data: ReportData) -> str:
    parts: list[str] = []
    for summary in data.runs:
        agreement = summary.rules
        if agreement is None:
            continue
        body = [[c.language, c.level, c.elicited, c.both, c.same, c.agreement, c.rules_none] for c in agreement.cells]
        table = _table(["language", "level", "elicited", "rules letter too", "same letter", "agreement",
                        "rules: no answer"], body, 2)
        rows = [[d.item_id, d.language, d.level, d.sample, d.gold, d.rules, d.elicited] for d in agreement.disagreements]
        listed = (_table(["item", "language", "level", "sample", "gold", "rules", "elicited"], rows, 3)
                  if rows else '<p class="note">No disagreement.</p>')
        shown = len(agreement.disagreements)
        more = f" (first {shown} of {agreement.disagreements_total})" if shown < agreement.disagreements_total else ""
        parts.append(f"{_heading(summary)}{table}<h4>Disagreements{more}</h4>{listed}")
    return "".join(parts) or ('<p class="note">Needs a run with --elicit all (every reply gets the follow-up turn, '
                              "so the rules' letter can be set against the model's own).</p>")


def _calibration(data: ReportData) -> str:
    parts: list[str] = []
    for summary in data.runs:
        cells = [row for row in data.board if row.run_id == summary.run.id and row.level == "overall" and row.reliability]
        if cells:
            parts.append(f'{_heading(summary)}<div class="figure">{plots.reliability(cells)}</div>')
    note = ("Confidence: the top letter's probability (log-probability scoring), or the share of an item's samples "
            "that gave the majority answer (several samples); 10 equal-width bins, each point labelled with its count.")
    return (f'<p class="note">{note}</p>' + "".join(parts) if parts else
            '<p class="note">Needs a run scored by log-probabilities or one with several samples per question.</p>')


def _outcomes(data: ReportData) -> str:
    names = [s.run.id for s in data.runs]
    figure = plots.outcome_bars(names, [s.figures.by_outcome for s in data.runs])
    methods = sorted({m for s in data.runs for m in s.figures.methods})
    outcome_table = _table(["run", "correct", "wrong", "unanswered", "error"],
                           [[s.run.id, *s.figures.by_outcome.values()] for s in data.runs], 1)
    method_table = _table(["extraction method", *names], [[m, *(s.figures.methods.get(m, 0) for s in data.runs)]
                                                          for m in methods], 1)
    return f'<div class="figure">{figure}</div>{outcome_table}{method_table}{_capped(data)}'


def _distributions(data: ReportData) -> str:
    names = [s.run.id for s in data.runs]
    figure = plots.distributions(names, [s.figures.tokens for s in data.runs], [s.figures.latencies for s in data.runs])
    body = [[s.run.id, *([f"{v:g}" for v in s.figures.tokens] if s.figures.tokens else [None] * 3),
             *(s.figures.latencies or [None] * 3)] for s in data.runs]
    table = _table(["run", "tokens median", "tokens p90", "tokens max", "latency median (s)", "latency p90 (s)",
                    "latency max (s)"], body, 1)
    return f'<div class="figure">{figure}</div>{table}{_capped(data)}'


def _trend(data: ReportData) -> str:
    models: dict[str, dict[str, list[TrendPoint]]] = {}
    for point in data.trend:
        models.setdefault(point.model, {}).setdefault(point.series, []).append(point)
    shown = [model for model, series in models.items() if any(len(runs) > 1 for runs in series.values())]
    if not shown:
        return '<p class="note">Needs two completed runs of a model in one series (same dataset and configuration).</p>'
    figure = plots.trends({model: models[model] for model in shown[:TRENDS_SHOWN]})
    more = f"The first {TRENDS_SHOWN} of {len(shown)} models. " if len(shown) > TRENDS_SHOWN else ""
    return (f'<div class="figure">{figure}</div><p class="note">{more}Overall accuracy (every language) of each '
            "completed run of the whole dataset, per series (dataset and configuration); the band is the 95 % Wilson "
            "interval.</p>")


def _wrong(data: ReportData) -> str:
    parts: list[str] = []
    for summary in data.runs:
        rows = []
        for wrong in summary.figures.wrong:
            item = data.questions.get((summary.run.dataset_sha256, wrong["item_id"]))
            text = item.texts.get(wrong["language"]) if item else None
            stem = escape(text.question) if text else '<span class="note">(pass --dataset to show the question)</span>'
            options = "<br>".join(f"{escape(k)}. {escape(v)}" for k, v in text.options.items()) if text else ""
            rows.append([f"<code>{escape(wrong['item_id'])}</code>", escape(wrong["language"]), escape(wrong["level"]),
                         stem, options, escape(wrong["gold"]), escape(wrong["predicted"] or "no answer"),
                         escape(wrong["method"] or ""),
                         f"<details><summary>reply</summary><pre>{escape(wrong['response'] or '')}</pre></details>"])
        total = summary.figures.by_outcome["wrong"] + summary.figures.by_outcome["unanswered"]
        shown = f"first {WRONG_SHOWN} of " if total > WRONG_SHOWN else ""
        parts.append(f"<details><summary>{escape(summary.run.id)} ({escape(summary.run.model)}): {shown}{total} "
                     f"wrong or unanswered</summary>{_table(WRONG_HEADER, rows, markup=True)}</details>")
    return "".join(parts) + _capped(data)


def build_report(source: ResultSource, run_ids: Sequence[str], dataset_paths: Sequence[str],
                 fields: FieldMap | None = None) -> str:
    """``fields``: the column mapping the ``dataset_paths`` are read through (None: the AnesBench layout)."""
    data = gather(source, run_ids, dataset_paths, fields)
    sections = [
        ("Runs and what they used (validity record)", _validity(data)),
        ("Leaderboard (paper layout)", _board(data)),
        ("Accuracy by level and language, with 95 % Wilson intervals", _accuracy(data)),
        ("Accuracy over time per model", _trend(data)),
        ("Paired comparison", _comparisons(data)),
        ("English ↔ Chinese agreement", _agreement(data)),
        ("Rules vs the model's elicited letter", _rules(data)),
        ("Calibration (reliability diagram)", _calibration(data)),
        ("Outcomes and extraction methods", _outcomes(data)),
        ("Tokens and latency", _distributions(data)),
        ("Questions answered wrongly or not at all", _wrong(data)),
    ]
    body = "".join(f"<section><h2>{escape(title)}</h2>{content}</section>" for title, content in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>AnesBench report</title><style>{STYLE}</style></head><body>"
        f"<h1>AnesBench report</h1><p class=\"note\">anesbench {escape(__version__)}; {data.runs_total} run(s). "
        "Accuracy = correct / graded answers; errors (no usable response) are counted apart.</p>"
        f"{body}</body></html>\n"
    )
