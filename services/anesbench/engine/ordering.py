"""The order pending work is sent in: longest expected first, from earlier runs' history.

Reply lengths are heavy-tailed (chain-of-thought varies by 10x and more). Sent in file order, the
longest replies start at random times and the slots idle while the last ones finish; sent longest
first (the LPT rule), the short ones fill in around them and the run ends close to its lower bound
max(total work ÷ slots, longest request). The store knows how long each question took in earlier
runs on the same dataset (any model: which questions are long is mostly a property of the
question). Without history the file's order is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from anesbench.dataset import Item

FILE_ORDER = "file"


@dataclass(frozen=True, slots=True)
class Ordering:
    """Expected relative length per (item id, language); empty: file order."""

    runs: tuple[str, ...] = ()
    expected: dict[tuple[str, str], float] | None = None

    @property
    def label(self) -> str:
        """What the run record says: ``history:<run ids>`` or ``file``."""
        return f"history:{','.join(self.runs)}" if self.expected else FILE_ORDER

    def cells(self, items: Iterable[Item], languages: Sequence[str]) -> Iterator[tuple[Item, str]]:
        """Every (item, language) in sending order. Without history this streams ``items`` as they come;
        with history it holds them (to sort) and sends the longest expected first. A cell without
        history counts as typical (1.0, the median); ties keep the file's order."""
        if not self.expected:
            return ((item, language) for item in items for language in languages)
        expected = self.expected
        cells = [(item, language) for item in items for language in languages]
        cells.sort(key=lambda cell: -expected.get((cell[0].id, cell[1]), 1.0))  # stable: ties in file order
        return iter(cells)
