"""Where compare, export and report read from: the interface (the CLI gives a local or a remote one).

A source gives run records, leaderboard rows, every result of a run as an export row (a dict in
:data:`~anesbench.store.export_sql.EXPORT_NAMES` order) pushed to a callback page by page, so a large
run is never held in memory, and the report's aggregates, computed where the store is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from anesbench.analysis.compare import Outcome
from anesbench.dataset.model import LEVEL_NAMES
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import RunFigures, TrendPoint

Visit = Callable[[dict[str, Any]], None]
LEVEL_NUMBER = {name: number for number, name in LEVEL_NAMES.items()}


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
