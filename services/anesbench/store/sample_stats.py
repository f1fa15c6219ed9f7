"""Figures for runs with several samples per question (``--samples N``), per language and level.

* mean accuracy: the accuracy of each sample index, averaged over the samples;
* majority-vote accuracy: per question the most frequent prediction ("no answer" is a vote too; a
  tie is no answer), right or wrong;
* agreement: the share of questions whose graded samples all gave the same prediction.

Errors (no usable response) are left out, like everywhere else.

>>> rows = [("i1", "en", "system1", 0, "A", "A"), ("i1", "en", "system1", 1, "A", "B"),
...         ("i1", "en", "system1", 2, "A", "A"), ("i2", "en", "system1", 0, "B", "B"),
...         ("i2", "en", "system1", 1, "B", "B"), ("i2", "en", "system1", 2, "B", "B")]
>>> summarize_samples(rows)[("en", "overall")]
SampleFigures(mean_accuracy=0.8333333333333334, majority_accuracy=1.0, agreement=0.5)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

SampleRow = tuple[str, str, str, int, str, str | None]  # item_id, language, level, sample, answer, pred


@dataclass(frozen=True, slots=True)
class SampleFigures:
    mean_accuracy: float
    majority_accuracy: float
    agreement: float


def _majority(preds: list[str | None]) -> str | None:
    ranked = Counter(preds).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def summarize_samples(rows: Iterable[SampleRow]) -> dict[tuple[str, str], SampleFigures]:
    """(language, level) -> figures, with level 'overall' per language."""
    per_item: dict[tuple[str, str], tuple[str, str, list[tuple[int, str | None]]]] = {}
    for item_id, language, level, sample, answer, pred in rows:
        entry = per_item.setdefault((item_id, language), (level, answer, []))
        entry[2].append((sample, pred))
    sample_cells: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    item_cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # items, majority right, agree
    for (_, language), (level, answer, votes) in per_item.items():
        preds = [pred for _, pred in votes]
        for cell in ((language, level), (language, "overall")):
            for sample, pred in votes:
                counts = sample_cells[cell][sample]
                counts[0] += pred == answer
                counts[1] += 1
            figures = item_cells[cell]
            figures[0] += 1
            figures[1] += _majority(preds) == answer
            figures[2] += len(set(preds)) == 1
    result: dict[tuple[str, str], SampleFigures] = {}
    for cell, (items, majority, agree) in item_cells.items():
        accuracies = [right / graded for right, graded in sample_cells[cell].values() if graded]
        result[cell] = SampleFigures(sum(accuracies) / len(accuracies), majority / items, agree / items)
    return result
