"""Where compare, export and report read from: the interface (the CLI gives a local or a remote one).

A source gives run records, leaderboard rows, and every result of a run as an export row (a dict in
:data:`~anesbench.store.export_sql.EXPORT_NAMES` order) pushed to a callback page by page, so a large
run is never held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from anesbench.analysis.compare import Outcome
from anesbench.dataset.model import LEVEL_NAMES
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow

Visit = Callable[[dict[str, Any]], None]
LEVEL_NUMBER = {name: number for number, name in LEVEL_NAMES.items()}


class ResultSource(Protocol):
    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]: ...

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]: ...

    def scan(self, run_id: str, visit: Visit) -> None: ...

    def close(self) -> None: ...


def outcome_of(row: dict[str, Any]) -> Outcome:
    return Outcome(row["item_id"], row["language"], row["sample"], LEVEL_NUMBER[row["level"]], row["gold"],
                   row["predicted"], row["outcome"], row["pred_rules"], bool(row["elicited"]))


def outcomes(source: ResultSource, run_id: str) -> list[Outcome]:
    found: list[Outcome] = []
    source.scan(run_id, lambda row: found.append(outcome_of(row)))
    return found
