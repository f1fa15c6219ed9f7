"""DispatcherServicer: the RPC handlers. Each converts its request, calls :class:`~anesbench.dispatcher.runs.Runs`
(or the store, for the leaderboard and exports), and converts the answer; errors become gRPC statuses."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from anesbench import metrics
from anesbench.dispatcher.runs import Runs
from anesbench.dispatcher.settings import serve_option
from anesbench.errors import InvalidInput
from anesbench.serving.status import rpc
from anesbench.store import Store
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.convert import (
    config_from_pb,
    export_row_to_pb,
    item_record,
    leaderboard_to_pb,
    report_figures_to_pb,
    request_field,
    run_to_pb,
)

DISPATCHER_SERVICE = "anesbench.v1.Dispatcher"
MAX_UPLOAD_ITEMS = 200_000
EXPORT_PAGE = 5000  # result rows per chunk
BACKUP_CHUNK = 1 << 20  # bytes per BackupStore message


def _count(method: str, code: grpc.StatusCode) -> None:
    metrics.DISPATCHER_REQUESTS.labels(method, code.name).inc()


# Errors name request fields as the request spells them and the dispatcher's own settings as its options.
_rpc = rpc(observe=_count, fields=request_field, settings=serve_option)


def _run_id(value: str, field: str = "run_id") -> str:
    if not value:
        raise InvalidInput("must not be empty", field=field)
    if len(value) > 128:
        raise InvalidInput("longer than 128 characters", field=field)
    return value


def _records(upload: pb.DatasetUpload) -> list[dict[str, Any]]:
    return [item_record(item, index) for index, item in enumerate(upload.items)]


class DispatcherServicer(dispatcher_pb2_grpc.DispatcherServicer):
    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    @_rpc
    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        if not request.HasField("spec"):
            raise InvalidInput("missing", field="spec")
        config = config_from_pb(request.spec, request.run_id)
        which = request.WhichOneof("dataset")
        if which == "upload":
            upload = request.upload
            if not upload.items:
                raise InvalidInput("the dataset has no items", field="upload.items")
            if len(upload.items) > MAX_UPLOAD_ITEMS:
                raise InvalidInput(f"more than {MAX_UPLOAD_ITEMS} items", field="upload.items")
            records = await asyncio.to_thread(_records, upload)  # 200,000 items take seconds: off the loop
            run = await self.runs.start(config, request.spec.prompt_template, upload=(upload.name, records))
        elif which == "dataset_name":
            run = await self.runs.start(config, request.spec.prompt_template, dataset_name=request.dataset_name)
        else:
            raise InvalidInput("give either upload or dataset_name", field="dataset")
        return run_to_pb(run)

    @_rpc
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_pb(await self.runs.get(_run_id(request.run_id)))

    @_rpc
    async def WatchRun(
        self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunEvent]:
        async for run, rate in self.runs.watch(_run_id(request.run_id)):
            yield pb.RunEvent(run=run_to_pb(run), items_per_second=rate)

    @_rpc
    async def CancelRun(self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_pb(await self.runs.cancel(_run_id(request.run_id)))

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        return pb.ListRunsResponse(runs=[run_to_pb(run) for run in await self.runs.list()])

    @_rpc
    async def GetLeaderboard(
        self, request: pb.GetLeaderboardRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLeaderboardResponse:
        run_ids = [_run_id(value, "run_ids") for value in request.run_ids]
        if request.run_id:
            run_ids.insert(0, _run_id(request.run_id))
        return leaderboard_to_pb(await self.runs.store.call(Store.leaderboard, run_ids, request.include_incomplete))

    @_rpc
    async def ExportResults(
        self, request: pb.ExportResultsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ExportResultsChunk]:
        # One store call per page, so writers are never held up long.
        run_id = _run_id(request.run_id)
        await self.runs.store.call(Store.get_run, run_id)  # NotFound before the stream begins
        await self.runs.store.call(Store.require_results, run_id)
        after: tuple[str, str, int] | None = None
        while page := await self.runs.store.call(Store.export_page, run_id, after, EXPORT_PAGE):
            yield pb.ExportResultsChunk(results=[export_row_to_pb(row) for row in page])
            if len(page) < EXPORT_PAGE:
                return
            after = (page[-1][0], page[-1][1], page[-1][3])

    @_rpc
    async def GetReportFigures(
        self, request: pb.GetReportFiguresRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReportFiguresResponse:
        run_ids = [_run_id(value, "run_ids") for value in request.run_ids]
        await self.runs.store.call(Store.require_runs, run_ids)
        figures = await self.runs.store.call(Store.report_figures, run_ids, request.wrong_shown)
        return report_figures_to_pb(figures, await self.runs.store.call(Store.trend, run_ids))

    @_rpc
    async def PruneRuns(self, request: pb.PruneRunsRequest, context: grpc.aio.ServicerContext) -> pb.PruneRunsResponse:
        which = request.WhichOneof("limit")
        outcome = await self.runs.store.call(
            Store.prune, keep_last=request.keep_last if which == "keep_last" else None,
            older_than_days=request.older_than_days if which == "older_than_days" else None,
            keep_aggregates=request.keep_aggregates)
        return pb.PruneRunsResponse(run_ids=outcome.run_ids, kept_aggregates=outcome.kept_aggregates,
                                    bytes_before=outcome.bytes_before, bytes_after=outcome.bytes_after)

    @_rpc
    async def RegradeRun(self, request: pb.RegradeRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        new_id = _run_id(request.new_run_id, "new_run_id") if request.new_run_id else None
        return run_to_pb(await self.runs.regrade(_run_id(request.run_id), new_id))

    @_rpc
    async def BackupStore(
        self, request: pb.BackupStoreRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.BackupStoreChunk]:
        # The copy is written beside the store (its volume has room for it, /tmp may not), read back in
        # chunks and removed however the stream ends.
        db = Path(self.runs.settings.db)
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=db.parent if db.name != ":memory:" else None) as folder:
            copy = Path(folder) / "store.duckdb"
            await self.runs.store.call(Store.backup_to, str(copy))
            with copy.open("rb") as handle:
                while data := await asyncio.to_thread(handle.read, BACKUP_CHUNK):
                    yield pb.BackupStoreChunk(data=data)
