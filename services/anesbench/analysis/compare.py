"""Paired comparison of two runs on the same questions, en↔zh agreement within one run, and rules vs the
model's elicited letter.

Pairs are (item, language, sample) keys that both runs answered (an error on either side drops the
pair; an unanswered reply is a wrong answer). Per language and level, and overall: each run's
accuracy, the difference A − B with a seeded 95 % paired-bootstrap interval, the exact McNemar
p-value, and how many pairs only A (won) or only B (lost) got right.

Under ``--elicit all`` every reply gets the follow-up turn, so each result holds two readings of one reply: the
rules' letter (``pred_rules``, or no answer) and the letter the model gave when asked (``predicted`` with method
``elicited``). Where both exist, their agreement is a measured precision of the rules on this model; the
disagreements are the replies to read. ``anesbench compare`` shows each as a table, JSON or Markdown.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from anesbench.dataset.model import LEVEL_NAMES
from anesbench.errors import InvalidInput
from anesbench.leaderboard import grid
from anesbench.stats import mcnemar_exact, paired_bootstrap
from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow
from anesbench.store.records import RunFigures, RunRecord, TrendPoint

ALL_LANGUAGES = "all"
DISAGREEMENTS_KEPT = 200
Visit = Callable[[dict[str, Any]], None]
LEVEL_NUMBER = {name: number for number, name in LEVEL_NAMES.items()}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One stored result, reduced to what the analyses need."""

    item_id: str
    language: str
    sample: int
    level: int
    answer: str
    pred: str | None
    outcome: str  # correct | wrong | unanswered | error
    pred_rules: str | None = None  # the rules' own letter (differs from pred when the follow-up decided)
    elicited: bool = False  # pred came from the follow-up turn


# Where compare, export and report read from (the CLI gives a local or a remote one): run records, leaderboard rows,
# every result of a run as an export row (a dict in export.EXPORT_NAMES order) pushed to a callback page by
# page, so a large run is never held in memory, and the report's aggregates, computed where the store is.
class ResultSource(Protocol):
    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]: ...

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]: ...

    def scan(self, run_id: str, visit: Visit) -> None: ...

    def outcomes(self, run_id: str) -> list[Outcome]: ...

    def report_figures(self, run_ids: Sequence[str], wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
        """Per run its aggregates and first ``wrong_shown`` wrong answers; the trend of the runs' models."""

    def close(self) -> None: ...


def outcome_of(row: dict[str, Any]) -> Outcome:
    return Outcome(row["item_id"], row["language"], row["sample"], LEVEL_NUMBER[row["level"]], row["gold"],
                   row["predicted"], row["outcome"], row["pred_rules"], bool(row["elicited"]))


@dataclass(frozen=True, slots=True)
class PairedCell:
    language: str
    level: str
    pairs: int
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_a - accuracy_b
    ci_low: float
    ci_high: float
    p_value: float  # exact McNemar
    won: int  # pairs only A got right
    lost: int  # pairs only B got right


@dataclass(frozen=True, slots=True)
class Comparison:
    run_a: str
    run_b: str
    cells: list[PairedCell]
    dropped: int  # keys present in both runs but with an error on at least one side


def _cell(language: str, level: str, pairs: Sequence[tuple[bool, bool]]) -> PairedCell:
    n = len(pairs)
    right_a = sum(a for a, _ in pairs)
    right_b = sum(b for _, b in pairs)
    won = sum(a and not b for a, b in pairs)
    lost = sum(b and not a for a, b in pairs)
    low, high = paired_bootstrap(won, lost, n)
    return PairedCell(language, level, n, right_a / n, right_b / n, (right_a - right_b) / n, low, high,
                      mcnemar_exact(won, lost), won, lost)


def cells_of(outcome: Outcome) -> list[tuple[str, str]]:
    """The (language, level) cells a result counts in: its language and 'all', by its level and 'overall'."""
    return [(language, level) for language in (outcome.language, ALL_LANGUAGES)
            for level in (LEVEL_NAMES[outcome.level], "overall")]


def cells_in_order(languages: Sequence[str], present: Container[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (language, level) cells present: per language (then 'all' when there are several) by level."""
    groups = [*languages, ALL_LANGUAGES] if len(languages) > 1 else languages
    return [(language, level) for language in groups for level in LEVEL_ORDER if (language, level) in present]


def compare_runs(run_a: RunRecord, outcomes_a: Iterable[Outcome], run_b: RunRecord,
                 outcomes_b: Iterable[Outcome]) -> Comparison:
    if run_a.id == run_b.id:
        raise InvalidInput(f"compare: RUN_A and RUN_B are the same run {run_a.id!r}; give two different runs")
    if run_a.dataset_sha256 != run_b.dataset_sha256:
        raise InvalidInput(
            f"compare: runs {run_a.id!r} (dataset {run_a.dataset_name}, sha256 {run_a.dataset_sha256[:12]}) and "
            f"{run_b.id!r} (dataset {run_b.dataset_name}, sha256 {run_b.dataset_sha256[:12]}) are on different datasets"
        )
    a = {(o.item_id, o.language, o.sample): o for o in outcomes_a}
    b = {(o.item_id, o.language, o.sample): o for o in outcomes_b}
    items_a, items_b = {key[0] for key in a}, {key[0] for key in b}
    if items_a != items_b:
        raise InvalidInput(
            f"compare: runs {run_a.id!r} and {run_b.id!r} hold different item sets ({len(items_a - items_b)} items only "
            f"in {run_a.id!r}, {len(items_b - items_a)} only in {run_b.id!r})"
        )
    languages = [language for language in run_a.languages if language in run_b.languages]
    common = [key for key in a if key in b and key[1] in languages]
    if not common:
        raise InvalidInput(f"compare: runs {run_a.id!r} and {run_b.id!r} share no language and sample to pair")
    grouped: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    dropped = 0
    for key in sorted(common):
        left, right = a[key], b[key]
        if "error" in (left.outcome, right.outcome):
            dropped += 1
            continue
        for cell in cells_of(left):
            grouped[cell].append((left.outcome == "correct", right.outcome == "correct"))
    cells = [_cell(*key, grouped[key]) for key in cells_in_order(languages, grouped)]
    return Comparison(run_a.id, run_b.id, cells, dropped)


@dataclass(frozen=True, slots=True)
class AgreementCell:
    level: str
    pairs: int  # (item, sample) answered in both languages
    same_letter: float  # share where both languages gave the same letter
    accuracy_en: float
    accuracy_zh: float


def language_agreement(run: RunRecord, outcomes: Iterable[Outcome]) -> list[AgreementCell]:
    """en↔zh agreement of one run holding both languages, per level and overall."""
    if not {"en", "zh"} <= set(run.languages):
        raise InvalidInput(f"compare: run {run.id!r} was asked in {','.join(run.languages)} only; en↔zh agreement "
                           "needs a run with {languages} en,zh", mentions=("languages",))
    by_key: dict[tuple[str, int], dict[str, Outcome]] = defaultdict(dict)
    for outcome in outcomes:
        if outcome.outcome != "error" and outcome.language in ("en", "zh"):
            by_key[(outcome.item_id, outcome.sample)][outcome.language] = outcome
    grouped: dict[str, list[tuple[Outcome, Outcome]]] = defaultdict(list)
    for pair in by_key.values():
        if len(pair) == 2:
            en, zh = pair["en"], pair["zh"]
            grouped[LEVEL_NAMES[en.level]].append((en, zh))
            grouped["overall"].append((en, zh))
    return [AgreementCell(level, len(pairs),
                          sum(en.pred is not None and en.pred == zh.pred for en, zh in pairs) / len(pairs),
                          sum(en.outcome == "correct" for en, _ in pairs) / len(pairs),
                          sum(zh.outcome == "correct" for _, zh in pairs) / len(pairs))
            for level in LEVEL_ORDER if (pairs := grouped.get(level))]


@dataclass(frozen=True, slots=True)
class RulesCell:
    language: str
    level: str
    elicited: int  # results with a letter from the follow-up turn
    both: int  # ... of which the rules found a letter too
    same: int  # ... and it was the same letter
    rules_none: int  # elicited, and the rules found no answer

    @property
    def agreement(self) -> float | None:
        """Share of ``both`` where the rules' letter is the model's; None when there is no pair."""
        return self.same / self.both if self.both else None


@dataclass(frozen=True, slots=True)
class Disagreement:
    item_id: str
    language: str
    level: str
    sample: int
    gold: str
    rules: str
    elicited: str


@dataclass(frozen=True, slots=True)
class RulesAgreement:
    run_id: str
    cells: list[RulesCell]
    disagreements: list[Disagreement]  # the first DISAGREEMENTS_KEPT, in key order
    disagreements_total: int


def rules_agreement(run_id: str, outcomes: Iterable[Outcome]) -> RulesAgreement:
    # An elicited result always has its letter.
    elicited = sorted((o for o in outcomes if o.elicited and o.pred is not None),
                      key=lambda o: (o.item_id, o.language, o.sample))
    grouped: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in elicited:
        for cell in cells_of(o):
            grouped[cell].append(o)
    cells = []
    for key in cells_in_order(sorted({o.language for o in elicited}), grouped):
        g = grouped[key]
        cells.append(RulesCell(*key, len(g), sum(o.pred_rules is not None for o in g),
                               sum(o.pred_rules == o.pred for o in g), sum(o.pred_rules is None for o in g)))
    differ = [Disagreement(o.item_id, o.language, LEVEL_NAMES[o.level], o.sample, o.answer, o.pred_rules, o.pred)
              for o in elicited if o.pred is not None and o.pred_rules is not None and o.pred_rules != o.pred]
    return RulesAgreement(run_id, cells, differ[:DISAGREEMENTS_KEPT], len(differ))


# --- ``anesbench compare`` output: table, JSON or Markdown ------------------------------------
def render_comparison(comparison: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"run_a": comparison.run_a, "run_b": comparison.run_b, "dropped_pairs": comparison.dropped,
                           "cells": [asdict(cell) for cell in comparison.cells]}, ensure_ascii=False, indent=2)
    header = ["lang", "level", "pairs", f"acc A ({comparison.run_a})", f"acc B ({comparison.run_b})", "A - B",
              "95% CI", "McNemar p", "won", "lost"]
    body = [
        [c.language, c.level, str(c.pairs), f"{c.accuracy_a:.3f}", f"{c.accuracy_b:.3f}", f"{c.difference:+.3f}",
         f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]", f"{c.p_value:.3g}" if c.p_value >= 0.001 else f"{c.p_value:.1e}",
         str(c.won), str(c.lost)]
        for c in comparison.cells
    ]
    note = (f"paired over items both runs answered; {comparison.dropped} pair(s) dropped for an error on either side; "
            "won/lost = pairs only A / only B got right; CI: seeded paired bootstrap")
    return f"{grid(header, body, fmt)}\n\n{note}"


def render_agreement(run_id: str, cells: Sequence[AgreementCell], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"run_id": run_id, "cells": [asdict(cell) for cell in cells]}, ensure_ascii=False, indent=2)
    header = ["level", "pairs", "same letter en/zh", "acc en", "acc zh"]
    body = [[c.level, str(c.pairs), f"{c.same_letter:.3f}", f"{c.accuracy_en:.3f}", f"{c.accuracy_zh:.3f}"]
            for c in cells]
    return f"en↔zh agreement of run {run_id} (items answered in both languages)\n\n{grid(header, body, fmt)}"


def rules_agreement_json(agreement: RulesAgreement) -> dict[str, Any]:
    return {"run_id": agreement.run_id,
            "cells": [{**asdict(cell), "agreement": cell.agreement} for cell in agreement.cells],
            "disagreements": [asdict(d) for d in agreement.disagreements],
            "disagreements_total": agreement.disagreements_total}


def render_rules_agreement(agreement: RulesAgreement, fmt: str) -> str:
    """Per language and level: how often the rules' letter is the model's elicited one; then the disagreements."""
    if fmt == "json":
        return json.dumps(rules_agreement_json(agreement), ensure_ascii=False, indent=2)
    header = ["lang", "level", "elicited", "rules letter too", "same letter", "agreement", "rules: no answer"]
    body = [[c.language, c.level, str(c.elicited), str(c.both), str(c.same),
             "-" if c.agreement is None else f"{c.agreement:.3f}", str(c.rules_none)] for c in agreement.cells]
    text = (f"rules vs the model's elicited letter, run {agreement.run_id} (--elicit all)\n\n{grid(header, body, fmt)}")
    if agreement.disagreements:
        rows = [[d.item_id, d.language, d.level, str(d.sample), d.gold, d.rules, d.elicited]
                for d in agreement.disagreements]
        shown = len(agreement.disagreements)
        more = f" (first {shown} of {agreement.disagreements_total})" if shown < agreement.disagreements_total else ""
        text += (f"\n\ndisagreements{more}\n\n"
                 + grid(["item", "lang", "level", "sample", "gold", "rules", "elicited"], rows, fmt))
    return text
