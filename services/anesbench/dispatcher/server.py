"""The dispatcher process: its RPC handlers (each converts its request, calls :class:`Runs` or the store,
and converts the answer; errors become gRPC statuses), who may call them (two bearer-token roles,
:func:`token_roles`; TLS is ``serving``'s), and its runs behind the shared serving lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TypeAlias

import grpc

from anesbench import metrics, serving
from anesbench.dispatcher.runs import DispatcherSettings, Runs, serve_option
from anesbench.engine.config import open_store
from anesbench.errors import AnesbenchError, InvalidInput
from anesbench.grader.client import MultiConnectionGrader
from anesbench.kube import InferenceServiceApi, ModelPool
from anesbench.serving.security import REFLECTION_PREFIX, TokenRoles, read_token
from anesbench.serving.status import rpc
from anesbench.store import Store
from anesbench.store.async_store import AsyncStore
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire import TOKEN_ENV, TOKEN_FILE_ENV
from anesbench.wire.convert import (
    config_from_pb,
    export_row_to_pb,
    item_record,
    leaderboard_to_pb,
    report_figures_to_pb,
    request_field,
    run_to_pb,
)

__all__ = ["DispatcherApp", "DispatcherSettings", "serve", "server_token"]
log = logging.getLogger(__name__)
DISPATCHER_SERVICE = "anesbench.v1.Dispatcher"
MAX_UPLOAD_ITEMS = 200_000
EXPORT_PAGE = 5000  # result rows per chunk
BACKUP_CHUNK = 1 << 20  # bytes per BackupStore message
Context: TypeAlias = grpc.aio.ServicerContext


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


class DispatcherServicer(dispatcher_pb2_grpc.DispatcherServicer):
    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    @_rpc
    async def StartRun(self, request: pb.StartRunRequest, context: Context) -> pb.Run:
        if not request.HasField("spec"):
            raise InvalidInput("missing", field="spec")
        config = config_from_pb(request.spec, request.run_id)
        which = request.WhichOneof("dataset")
        upload = None
        if which == "upload":
            if not request.upload.items:
                raise InvalidInput("the dataset has no items", field="upload.items")
            if len(request.upload.items) > MAX_UPLOAD_ITEMS:
                raise InvalidInput(f"more than {MAX_UPLOAD_ITEMS} items", field="upload.items")
            records = await asyncio.to_thread(lambda: [item_record(i, n) for n, i in enumerate(request.upload.items)])
            upload = request.upload.name, records  # converted off the loop: it takes seconds
        elif which != "dataset_name":
            raise InvalidInput("give either upload or dataset_name", field="dataset")
        return run_to_pb(await self.runs.start(config, request.spec.prompt_template, dataset_name=request.dataset_name,
                                               upload=upload))

    @_rpc
    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.Run:
        return run_to_pb(await self.runs.get(_run_id(request.run_id)))

    @_rpc
    async def WatchRun(self, request: pb.WatchRunRequest, context: Context) -> AsyncIterator[pb.RunEvent]:
        async for run, rate in self.runs.watch(_run_id(request.run_id)):
            yield pb.RunEvent(run=run_to_pb(run), items_per_second=rate)

    @_rpc
    async def CancelRun(self, request: pb.CancelRunRequest, context: Context) -> pb.Run:
        return run_to_pb(await self.runs.cancel(_run_id(request.run_id)))

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        return pb.ListRunsResponse(runs=[run_to_pb(run) for run in await self.runs.list()])

    @_rpc
    async def GetLeaderboard(self, request: pb.GetLeaderboardRequest, context: Context) -> pb.GetLeaderboardResponse:
        run_ids = [_run_id(value, "run_ids") for value in request.run_ids]
        if request.run_id:
            run_ids.insert(0, _run_id(request.run_id))
        return leaderboard_to_pb(await self.runs.store.call(Store.leaderboard, run_ids, request.include_incomplete))

    @_rpc
    async def ExportResults(self, request: pb.ExportResultsRequest, context: Context) -> AsyncIterator[pb.ExportResultsChunk]:
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
    async def GetReportFigures(self, request: pb.GetReportFiguresRequest, context: Context) -> pb.GetReportFiguresResponse:
        run_ids = [_run_id(value, "run_ids") for value in request.run_ids]
        await self.runs.store.call(Store.require_runs, run_ids)
        figures = await self.runs.store.call(Store.report_figures, run_ids, request.wrong_shown)
        return report_figures_to_pb(figures, await self.runs.store.call(Store.trend, run_ids))

    @_rpc
    async def PruneRuns(self, request: pb.PruneRunsRequest, context: Context) -> pb.PruneRunsResponse:
        which = request.WhichOneof("limit")
        outcome = await self.runs.store.call(
            Store.prune, keep_last=request.keep_last if which == "keep_last" else None,
            older_than_days=request.older_than_days if which == "older_than_days" else None,
            keep_aggregates=request.keep_aggregates)
        return pb.PruneRunsResponse(run_ids=outcome.run_ids, kept_aggregates=outcome.kept_aggregates,
                                    bytes_before=outcome.bytes_before, bytes_after=outcome.bytes_after)

    @_rpc
    async def RegradeRun(self, request: pb.RegradeRunRequest, context: Context) -> pb.Run:
        new_id = _run_id(request.new_run_id, "new_run_id") if request.new_run_id else None
        return run_to_pb(await self.runs.regrade(_run_id(request.run_id), new_id))

    @_rpc
    async def BackupStore(self, request: pb.BackupStoreRequest, context: Context) -> AsyncIterator[pb.BackupStoreChunk]:
        # The copy is written beside the store (its volume has room for it, /tmp may not), read back in
        # chunks and removed however the stream ends.
        db = Path(self.runs.settings.db)
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=db.parent if db.name != ":memory:" else None) as folder:
            copy = Path(folder) / "store.duckdb"
            await self.runs.store.call(Store.backup_to, str(copy))
            with copy.open("rb") as handle:
                while data := await asyncio.to_thread(handle.read, BACKUP_CHUNK):
                    yield pb.BackupStoreChunk(data=data)


class DispatcherApp:
    """The dispatcher as a :class:`anesbench.serving.Service`."""

    service_names: Sequence[str] = (DISPATCHER_SERVICE,)

    def __init__(self, settings: DispatcherSettings) -> None:
        # An unfinished run without a spec was an embedded run in the same file, and its process is gone
        # (this dispatcher holds the file): it is marked failed; the others this dispatcher resumes.
        self.store = AsyncStore(open_store(settings.db, abandoned=lambda run_id: log.warning(
            "run %s marked failed: its process is gone", run_id)))
        self.grader = MultiConnectionGrader(settings.grader, settings.grader_connections,
                                            give_up_after=settings.grader_grace, tls=settings.grader_tls,
                                            token=settings.grader_token)
        models = None  # the InferenceServices of the namespace the dispatcher was given to drive
        if settings.kube_namespace:
            models = ModelPool(InferenceServiceApi(settings.kube_namespace), owner=settings.kube_owner,
                               budget=settings.gpu_budget, grace=settings.model_idle_seconds,
                               ready_timeout=settings.ready_timeout, allowed_endpoints=settings.allowed_endpoints)
        self.runs = Runs(self.store, self.grader, settings, models)
        self._drained: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(DispatcherServicer(self.runs), server)

    async def start(self) -> None:
        """Before SERVING: adopt on-demand models started before a restart, publish the newest deltas, resume runs."""
        if self.runs.models is not None:
            try:
                await self.runs.models.recover()
            except AnesbenchError as exc:  # serve anyway: runs wait for the API like for a model
                log.error("cannot look for on-demand models started before a restart: %s", exc)
        for model, dataset, delta in await self.store.call(Store.newest_deltas):  # what /metrics showed before a restart
            metrics.set_delta(model, dataset, delta.language, delta.delta, delta.pvalue)
        if resumed := await self.runs.resume_unfinished():
            log.info("resumed %d unfinished run(s): %s", len(resumed), ", ".join(resumed))

    def drain(self) -> None:
        self._drained = asyncio.get_running_loop().create_task(self.runs.drain())

    async def shutdown(self) -> None:
        await (self._drained or self.runs.drain())
        if self.runs.models is not None:
            await self.runs.models.close()
        await self.grader.close()
        await self.store.close()


def serve(settings: DispatcherSettings) -> int:
    """Run the dispatcher until SIGTERM/SIGINT, then drain; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    roles = token_roles(settings.auth_token, settings.read_token)
    config = serving.ServeConfig(host=settings.host, port=settings.port, metrics_port=settings.metrics_port,
                                 grace_seconds=settings.grace_seconds, interceptors=(roles,) if roles else (),
                                 tls=settings.tls, health_port=settings.health_port)
    log.info("the Dispatcher API %s, over %s", "requires a bearer token" if roles else "is open to anyone reaching it",
             "TLS" if settings.tls else "plain text")
    return serving.serve(lambda: DispatcherApp(settings), config)


# Who may call what: two bearer-token roles (the check itself is ``serving.security.TokenRoles``).
# * runner (--auth-token-file, or $ANESBENCH_DISPATCHER_TOKEN): every method, StartRun and CancelRun
#   included; what CronJobs and operators use.
# * reader (--read-token-file): READ_METHODS only, for dashboards and analysts; anything else is
#   PERMISSION_DENIED.
# Without either token the API is open (loopback development). Health checking stays open; reflection
# needs a token of either role. How a client finds and sends its token is anesbench.cli.dispatcher_client.
RUNNER, READER = "runner", "reader"
READ_METHODS = frozenset({"ListRuns", "GetRun", "WatchRun", "GetLeaderboard", "ExportResults", "GetReportFigures"})
DENIED = f"this dispatcher requires a bearer token: pass --dispatcher-token-file, or set {TOKEN_FILE_ENV} or {TOKEN_ENV}"


def server_token(path: str | None) -> str | None:
    """The runner token: from ``--auth-token-file``, else the environment; None = no authentication."""
    if path:
        return read_token(path, "auth_token_file")
    return os.environ.get(TOKEN_ENV, "").strip() or None


def role_allows(role: str, method: str) -> bool:
    """Whether a token of ``role`` may call ``method`` (a full gRPC method name).

    >>> role_allows(READER, "/anesbench.v1.Dispatcher/ListRuns"), role_allows(READER, "/anesbench.v1.Dispatcher/StartRun")
    (True, False)
    """
    if role == RUNNER:
        return True
    service, _, name = method.lstrip("/").rpartition("/")
    return method.startswith(REFLECTION_PREFIX) or (service == DISPATCHER_SERVICE and name in READ_METHODS)


def token_roles(runner: str | None, reader: str | None) -> TokenRoles | None:
    """The interceptor for these tokens; None when there are none (no authentication)."""
    if reader is not None and runner is None:
        raise InvalidInput("a reader token needs a runner token ({auth_token_file}) too", field="read_token_file",
                           mentions=("auth_token_file",))
    if runner is None:
        return None
    if reader == runner:
        raise InvalidInput("must differ from the runner token", field="read_token_file")
    roles = {runner: RUNNER, **({reader: READER} if reader else {})}
    return TokenRoles(roles, role_allows, unauthenticated=DENIED, on_refused=_count)
