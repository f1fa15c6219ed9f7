"""The dispatcher process: its runs and the servicer behind the shared serving lifecycle.

Who may call what is two bearer-token roles (:func:`token_roles`); TLS is ``serving``'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import grpc

from anesbench import serving
from anesbench.dispatcher.runs import Runs
from anesbench.dispatcher.service import DISPATCHER_SERVICE, DispatcherServicer
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.engine.admission import open_store
from anesbench.errors import AnesbenchError, InvalidInput
from anesbench.grader.client import MultiConnectionGrader
from anesbench.kube.api import InferenceServiceApi
from anesbench.kube.pool import ModelPool
from anesbench.metrics import DISPATCHER_REQUESTS, set_delta
from anesbench.serving.security import REFLECTION_PREFIX, TokenRoles, read_token
from anesbench.store import Store
from anesbench.store.async_store import AsyncStore
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.auth import TOKEN_ENV, TOKEN_FILE_ENV

__all__ = ["DispatcherApp", "DispatcherSettings", "serve", "server_token"]
log = logging.getLogger(__name__)


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
        self.runs = Runs(self.store, self.grader, settings, model_pool(settings))
        self._drained: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(DispatcherServicer(self.runs), server)

    async def start(self) -> None:
        """Adopt the on-demand models started before a restart, publish the newest deltas, then resume every
        unfinished run, before reporting SERVING."""
        if self.runs.models is not None:
            try:
                await self.runs.models.recover()
            except AnesbenchError as exc:  # serve anyway: runs wait for the API like for a model
                log.error("cannot look for on-demand models started before a restart: %s", exc)
        for model, dataset, delta in await self.store.call(Store.newest_deltas):  # what /metrics showed before a restart
            set_delta(model, dataset, delta.language, delta.delta, delta.pvalue)
        resumed = await self.runs.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished run(s): %s", len(resumed), ", ".join(resumed))

    def drain(self) -> None:
        self._drained = asyncio.get_running_loop().create_task(self.runs.drain())

    async def shutdown(self) -> None:
        await (self._drained or self.runs.drain())
        if self.runs.models is not None:
            await self.runs.models.close()
        await self.grader.close()
        await self.store.close()


def model_pool(settings: DispatcherSettings) -> ModelPool | None:
    """The pool of InferenceServices, when the dispatcher was given a namespace to drive."""
    if not settings.kube_namespace:
        return None
    return ModelPool(InferenceServiceApi(settings.kube_namespace), owner=settings.kube_owner,
                     budget=settings.gpu_budget, grace=settings.model_idle_seconds,
                     ready_timeout=settings.ready_timeout)


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
# needs a token of either role. How a client finds and sends its token is anesbench.wire.auth.
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


def _count(method: str, code: grpc.StatusCode) -> None:
    DISPATCHER_REQUESTS.labels(method, code.name).inc()
