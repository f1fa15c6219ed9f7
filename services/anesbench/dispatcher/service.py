"""DispatcherServicer: translates gRPC requests to RunManager calls and back. Nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from anesbench import metrics
from anesbench.dispatcher.manager import RunManager
from anesbench.dispatcher.settings import serve_option
from anesbench.errors import InvalidInput
from anesbench.serving import rpc
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.convert import (
    config_from_pb,
    export_row_to_pb,
    item_record,
    leaderboard_to_pb,
    request_field,
    run_to_pb,
)

DISPATCHER_SERVICE = "anesbench.v1.Dispatcher"
MAX_UPLOAD_ITEMS = 200_000


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
    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

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
            run = await self.manager.start(config, request.spec.prompt_template, upload=(upload.name, records))
        elif which == "dataset_name":
            run = await self.manager.start(config, request.spec.prompt_template, dataset_name=request.dataset_name)
        else:
            raise InvalidInput("give either upload or dataset_name", field="dataset")
        return run_to_pb(run)

    @_rpc
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_pb(await self.manager.get(_run_id(request.run_id)))

    @_rpc
    async def WatchRun(
        self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunEvent]:
        async for run, rate in self.manager.watch(_run_id(request.run_id)):
            yield pb.RunEvent(run=run_to_pb(run), items_per_second=rate)

    @_rpc
    async def CancelRun(self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_pb(await self.manager.cancel(_run_id(request.run_id)))

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        return pb.ListRunsResponse(runs=[run_to_pb(run) for run in await self.manager.list()])

    @_rpc
    async def GetLeaderboard(
        self, request: pb.GetLeaderboardRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLeaderboardResponse:
        run_ids = [_run_id(value, "run_ids") for value in request.run_ids]
        if request.run_id:
            run_ids.insert(0, _run_id(request.run_id))
        return leaderboard_to_pb(await self.manager.leaderboard(run_ids, request.include_incomplete))

    @_rpc
    async def ExportResults(
        self, request: pb.ExportResultsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ExportResultsChunk]:
        async for page in self.manager.export_pages(_run_id(request.run_id)):
            yield pb.ExportResultsChunk(results=[export_row_to_pb(row) for row in page])
