"""Where reads for compare, export and report come from: the local DuckDB file or a dispatcher.

Both give the same things: run records, leaderboard rows, item outcomes, and every result as an
export row (a dict in :data:`~anesbench.store.export_sql.EXPORT_NAMES` order) pushed to a callback
page by page, so a large run is never held in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from anesbench.analysis import Outcome
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord, Store
from anesbench.store.export_sql import EXPORT_NAMES
from anesbench.store.leaderboard_sql import LeaderboardRow

Visit = Callable[[dict[str, Any]], None]
LEVEL_NUMBER = {"system1": 1, "system1.x": 2, "system2": 3}


class ResultSource(Protocol):
    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]: ...

    def all_runs(self) -> list[RunRecord]: ...

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]: ...

    def scan(self, run_id: str, visit: Visit) -> None: ...

    def close(self) -> None: ...


def outcomes(source: ResultSource, run_id: str) -> list[Outcome]:
    found: list[Outcome] = []

    def keep(row: dict[str, Any]) -> None:
        found.append(Outcome(row["item_id"], row["language"], row["sample"], LEVEL_NUMBER[row["level"]], row["gold"],
                             row["predicted"], row["outcome"]))

    source.scan(run_id, keep)
    return found


class EmbeddedSource:
    PAGE = 2000

    def __init__(self, db: str) -> None:
        if not Path(db).is_file():
            raise InvalidInput(f"--db: no such file: {db}")
        self.store = Store(db, read_only=True)

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        return self.store.require_runs(run_ids)

    def all_runs(self) -> list[RunRecord]:
        return self.store.list_runs()

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
        return self.store.leaderboard(run_ids, include_incomplete)

    def scan(self, run_id: str, visit: Visit) -> None:
        after: tuple[str, str, int] | None = None
        while True:
            page = self.store.export_page(run_id, after, self.PAGE)
            for row in page:
                visit(dict(zip(EXPORT_NAMES, row, strict=True)))
            if len(page) < self.PAGE:
                return
            after = (page[-1][0], page[-1][1], page[-1][3])

    def close(self) -> None:
        self.store.close()


class RemoteSource:
    def __init__(self, target: str) -> None:
        self.target = target

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        from anesbench.cli.dispatcher_client import DispatcherClient
        from anesbench.dispatcher.convert import run_from_pb
        from anesbench.v1 import dispatcher_pb2 as pb

        async def get() -> list[RunRecord]:
            async with DispatcherClient(self.target) as client:
                return [run_from_pb(await client.call(client.stub.GetRun, pb.GetRunRequest(run_id=run_id)))
                        for run_id in run_ids]

        return asyncio.run(get())

    def all_runs(self) -> list[RunRecord]:
        from anesbench.cli.remote_reads import remote_runs

        return remote_runs(self.target)

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
        from anesbench.cli.remote_reads import remote_leaderboard

        return remote_leaderboard(self.target, list(run_ids), include_incomplete)

    def scan(self, run_id: str, visit: Visit) -> None:
        from anesbench.cli.remote_reads import remote_export

        asyncio.run(remote_export(self.target, run_id, visit))

    def close(self) -> None:
        pass


def open_source(db: str, dispatcher: str | None) -> ResultSource:
    return RemoteSource(dispatcher) if dispatcher else EmbeddedSource(db)
