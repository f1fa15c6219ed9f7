"""The order pending work is sent in: the longest expected first, from earlier runs' history.

Reply lengths are heavy-tailed (chain-of-thought varies by 10x and more). Sent in file order, the
longest replies start at random times and the slots idle while the last ones finish. Sent longest
first (the LPT rule), the short ones fill in around them and the run ends close to its lower bound
max(total work ÷ slots, longest request), but only if sending costs nothing: strictly sorted, the
run ends on a burst of its shortest replies, hundreds of slots each freeing every few tens of ms,
faster than a harness spending ~0.4 ms of CPU per reply can refill them, and the slots idle at the
end after all (``bench/schedule_model.py``: 1.08 × the bound at 0.4 ms per reply, 1.21 at 0.6).
So only the longest cells, holding HEAD_SHARE of the expected work, go strictly longest first; the
rest alternate between the longest and the shortest left, which keeps the rate of replies even to
the end (1.03 at 0.4 ms, 1.10 at 0.6; 1.03 instead of 1.007 when sending is free).

The store knows how long each question took in earlier runs on the same dataset (any model: which
questions are long is mostly a property of the question). Without history the file's order is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
HEAD_SHARE = 0.4  # of the expected work, sent strictly longest first


@dataclass(frozen=True, slots=True)
class Ordering:
    """Expected relative length per (item id, language); empty: file order."""

    runs: Sequence[str] = ()
    expected: dict[tuple[str, str], float] | None = None

    @property
    def label(self) -> str:
        """What the run record says: ``history:<run ids>`` or ``file``."""
        return f"history:{','.join(self.runs)}" if self.expected else "file"

    def order(self, work: Iterable[T], key: Callable[[T], tuple[str, str]]) -> Iterator[T]:
        """``work`` in sending order; ``key`` gives a unit's (item id, language). Without history this
        streams ``work`` as it comes; with history it holds it (to sort) and sends the longest expected
        first (see the module's docstring). A unit without history counts as typical (1.0, the median);
        ties keep the file's order."""
        if not self.expected:
            return iter(work)
        units = list(work)
        lengths = [self.expected.get(key(unit), 1.0) for unit in units]
        longest_first = sorted(range(len(units)), key=lambda i: -lengths[i])  # stable: ties in file order
        return iter([units[i] for i in long_head_then_mixed(longest_first, lengths)])


def long_head_then_mixed(order: list[int], lengths: Sequence[float]) -> list[int]:
    """``order`` (longest first) rearranged: the longest cells holding HEAD_SHARE of the expected work go
    first, as sorted; the rest alternate between the longest and the shortest left.

    >>> long_head_then_mixed([0, 1, 2, 3, 4, 5], [10.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    [0, 1, 5, 2, 4, 3]
    """
    total = sum(lengths[i] for i in order)
    head, work = 0, 0.0
    while head < len(order) and work < HEAD_SHARE * total:
        work += lengths[order[head]]
        head += 1
    rest = order[head:]
    half = (len(rest) + 1) // 2
    pairs = itertools.zip_longest(rest[:half], reversed(rest[half:]))  # longest left, shortest left, ...
    return order[:head] + [i for pair in pairs for i in pair if i is not None]
