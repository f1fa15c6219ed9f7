"""Paired comparison of two runs on the same questions, and en↔zh agreement within one run.

Pairs are (item, language, sample) keys that both runs answered (an error on either side drops the
pair; an unanswered reply is a wrong answer). Per language and level, and overall: each run's
accuracy, the difference A − B with a seeded 95 % paired-bootstrap interval, the exact McNemar
p-value, and how many pairs only A (won) or only B (lost) got right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass

from anesbench.dataset.model import LEVEL_NAMES
from anesbench.errors import InvalidInput
from anesbench.stats import mcnemar_exact, paired_bootstrap
from anesbench.store.leaderboard_sql import LEVEL_ORDER
from anesbench.store.records import RunRecord

ALL_LANGUAGES = "all"


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

    @property
    def graded(self) -> bool:
        return self.outcome != "error"

    @property
    def right(self) -> bool:
        return self.outcome == "correct"


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
    return PairedCell(
        language, level, n, right_a / n if n else 0.0, right_b / n if n else 0.0,
        (right_a - right_b) / n if n else 0.0, low, high, mcnemar_exact(won, lost), won, lost,
    )


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
        if not (left.graded and right.graded):
            dropped += 1
            continue
        pair = (left.right, right.right)
        level = LEVEL_NAMES[left.level]
        for language in (left.language, ALL_LANGUAGES):
            grouped[(language, level)].append(pair)
            grouped[(language, "overall")].append(pair)
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
        if outcome.graded and outcome.language in ("en", "zh"):
            by_key[(outcome.item_id, outcome.sample)][outcome.language] = outcome
    grouped: dict[str, list[tuple[Outcome, Outcome]]] = defaultdict(list)
    for pair in by_key.values():
        if len(pair) == 2:
            en, zh = pair["en"], pair["zh"]
            grouped[LEVEL_NAMES[en.level]].append((en, zh))
            grouped["overall"].append((en, zh))
    cells: list[AgreementCell] = []
    for level in LEVEL_ORDER:
        pairs = grouped.get(level)
        if not pairs:
            continue
        n = len(pairs)
        same = sum(en.pred is not None and en.pred == zh.pred for en, zh in pairs)
        cells.append(AgreementCell(level, n, same / n, sum(en.right for en, _ in pairs) / n,
                                   sum(zh.right for _, zh in pairs) / n))
    return cells
