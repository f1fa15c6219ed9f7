"""How often the rules' letter equals the model's own elicited letter (runs with ``--elicit all``).

Under ``all`` every reply gets the follow-up turn, so each result holds two readings of one reply: the
rules' letter (``pred_rules``, or no answer) and the letter the model gave when asked (``predicted``
with method ``elicited``). Where both exist, their agreement is a measured precision of the rules on
this model; the disagreements are the replies to read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from anesbench.analysis.compare import ALL_LANGUAGES, Outcome, cells_in_order
from anesbench.dataset.model import LEVEL_NAMES

DISAGREEMENTS_KEPT = 200


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
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    languages: set[str] = set()
    disagreements: list[Disagreement] = []
    total = 0
    for o in sorted((o for o in outcomes if o.elicited), key=lambda o: (o.item_id, o.language, o.sample)):
        if o.pred is None:  # an elicited result always has its letter
            continue
        level = LEVEL_NAMES[o.level]
        languages.add(o.language)
        for language in (o.language, ALL_LANGUAGES):
            for cell_level in (level, "overall"):
                cell = counts[(language, cell_level)]
                cell[0] += 1
                cell[1] += o.pred_rules is not None
                cell[2] += o.pred_rules == o.pred
                cell[3] += o.pred_rules is None
        if o.pred_rules is not None and o.pred_rules != o.pred:
            total += 1
            if len(disagreements) < DISAGREEMENTS_KEPT:
                disagreements.append(Disagreement(o.item_id, o.language, level, o.sample, o.answer, o.pred_rules,
                                                  o.pred))
    cells = [RulesCell(*key, *counts[key]) for key in cells_in_order(sorted(languages), counts)]
    return RulesAgreement(run_id, cells, disagreements, total)
