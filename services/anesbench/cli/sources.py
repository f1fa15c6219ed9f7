"""The two :class:`~anesbench.analysis.source.ResultSource` kinds: the local DuckDB file, or a dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from anesbench.analysis.compare import Outcome
from anesbench.analysis.source import ResultSource, Visit, outcome_of
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord, Store
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.report_reads import RunFigures, TrendPoint


class EmbeddedSource:
    def __init__(self, db: str) -> None:
        if not Path(db).is_file():
            raise InvalidInput(f"no such file: {db}", field="db")
        self.store = Store(db, read_only=True)

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        return self.store.require_runs(run_ids)

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


class RemoteSource:
    def __init__(self, target: str) -> None:
        self.target = target

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        from anesbench.cli.dispatcher_client import DispatcherClient
        from anesbench.v1 import dispatcher_pb2 as pb
        from anesbench.wire.convert import run_from_pb

        async def get() -> list[RunRecord]:
            async with DispatcherClient(self.target) as client:
                return [run_from_pb(await client.call(client.stub.GetRun, pb.GetRunRequest(run_id=run_id)))
                        for run_id in run_ids]

        return asyncio.run(get())

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
        from anesbench.cli.remote_reads import remote_leaderboard

        return remote_leaderboard(self.target, list(run_ids), include_incomplete)

    def scan(self, run_id: str, visit: Visit) -> None:
        from anesbench.cli.remote_reads import remote_export

        asyncio.run(remote_export(self.target, run_id, visit))

    def outcomes(self, run_id: str) -> list[Outcome]:
        found: list[Outcome] = []
        self.scan(run_id, lambda row: found.append(outcome_of(row)))
        return found

    def report_figures(self, run_ids: Sequence[str], wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
        from anesbench.cli.remote_reads import remote_report_figures

        return remote_report_figures(self.target, list(run_ids), wrong_shown)

    def close(self) -> None:
        pass


def open_source(db: str, dispatcher: str | None) -> ResultSource:
    return RemoteSource(dispatcher) if dispatcher else EmbeddedSource(db)
