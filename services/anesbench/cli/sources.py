"""Where the read and store commands read from: the local DuckDB file (:class:`EmbeddedSource`) or a dispatcher
(:class:`~anesbench.cli.dispatcher_client.RemoteSource`, imported only then: it brings in gRPC)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from anesbench.analysis.compare import Outcome, Visit
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord, Store
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import PruneOutcome, RunFigures, TrendPoint

if TYPE_CHECKING:
    from anesbench.cli.dispatcher_client import RemoteSource


class EmbeddedSource:
    """The local store file."""

    def __init__(self, db: str, read_only: bool = True) -> None:
        if not Path(db).is_file():  # a missing store file is bad input, not an empty store
            raise InvalidInput(f"no such file: {db}", field="db")
        self.store = Store(db, read_only=read_only)

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

    def prune(self, keep_last: int | None, older_than: float | None, keep_aggregates: bool) -> PruneOutcome:
        return self.store.prune(keep_last, older_than, keep_aggregates)

    def backup_to(self, out: str) -> None:
        self.store.backup_to(out)

    def close(self) -> None:
        self.store.close()


def open_source(db: str, dispatcher: str | None, read_only: bool = True) -> closing[EmbeddedSource | RemoteSource]:
    """Where a command reads or changes the store: the dispatcher's if one is given, else the file ``db``."""
    if not dispatcher:
        return closing(EmbeddedSource(db, read_only))
    from anesbench.cli.dispatcher_client import RemoteSource

    return closing(RemoteSource(dispatcher))
