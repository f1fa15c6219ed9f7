"""Where the read commands read from: the local DuckDB file, or a dispatcher (``dispatcher_client.RemoteSource``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anesbench.analysis.compare import Outcome, Visit
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord, Store
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import RunFigures, TrendPoint

if TYPE_CHECKING:
    from anesbench.cli.dispatcher_client import RemoteSource


def existing(db: str) -> str:
    """``db``, a store file that exists (a missing one is bad input, not an empty store)."""
    if not Path(db).is_file():
        raise InvalidInput(f"no such file: {db}", field="db")
    return db


class EmbeddedSource:
    def __init__(self, db: str) -> None:
        self.store = Store(existing(db), read_only=True)

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        return self.store.require_runs(run_ids)

    def list_runs(self) -> list[RunRecord]:
        return self.store.list_runs()

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
        return self.store.leaderboard(run_ids, include_incomplete)

    def scan(self, run_id: str, visit: Visit) -> None:
        for row in self.store.iter_export(run_id):
            visit(row)

    def outcomes(self, run_id: str) -> list[Outcome]:
        return [Outcome(*row) for row in self.store.outcomes(run_id)]

    def report_figures(self, run_ids: Sequence[str], wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
        return self.store.report_figures(run_ids, wrong_shown), self.store.trend(run_ids)

    def close(self) -> None:
        self.store.close()


def open_source(db: str, dispatcher: str | None) -> EmbeddedSource | RemoteSource:
    if not dispatcher:
        return EmbeddedSource(db)
    from anesbench.cli.dispatcher_client import RemoteSource

    return RemoteSource(dispatcher)
