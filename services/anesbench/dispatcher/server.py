"""The dispatcher process: its runs and the servicer behind the shared serving lifecycle.

Authentication is optional: when the dispatcher has a bearer token (``--auth-token-file`` or
``$ANESBENCH_DISPATCHER_TOKEN``), every call of ``anesbench.v1.Dispatcher`` must carry
``authorization: Bearer <token>`` metadata, else it fails with UNAUTHENTICATED before reaching the
servicer. Health checking and reflection stay open: kubelet's native gRPC probes cannot send
metadata, and neither reveals or changes anything. How a client finds and sends the token is
:mod:`anesbench.wire.auth`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from anesbench import serving
from anesbench.dispatcher.runs import Runs
from anesbench.dispatcher.service import DISPATCHER_SERVICE, DispatcherServicer
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.engine.admission import open_store
from anesbench.errors import AnesbenchError
from anesbench.grader.multi import MultiConnectionGrader
from anesbench.kube.api import InferenceServiceApi
from anesbench.kube.pool import ModelPool
from anesbench.metrics import DISPATCHER_REQUESTS
from anesbench.store.async_store import AsyncStore
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.auth import AUTHORIZATION, TOKEN_ENV, TOKEN_FILE_ENV, bearer, read_token

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
                                            give_up_after=settings.grader_grace)
        self.runs = Runs(self.store, self.grader, settings, model_pool(settings))
        self._drained: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(DispatcherServicer(self.runs), server)

    async def start(self) -> None:
        """Adopt the on-demand models started before a restart, then resume every unfinished run,
        before reporting SERVING."""
        if self.runs.models is not None:
            try:
                await self.runs.models.recover()
            except AnesbenchError as exc:  # serve anyway: runs wait for the API like for a model
                log.error("cannot look for on-demand models started before a restart: %s", exc)
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
    interceptors = (BearerTokenInterceptor(settings.auth_token),) if settings.auth_token else ()
    config = serving.ServeConfig(host=settings.host, port=settings.port, metrics_port=settings.metrics_port,
                                 grace_seconds=settings.grace_seconds, interceptors=interceptors)
    if settings.auth_token:
        log.info("the Dispatcher API requires a bearer token")
    return serving.serve(lambda: DispatcherApp(settings), config)


OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DENIED = f"this dispatcher requires a bearer token: set {TOKEN_ENV} or {TOKEN_FILE_ENV}"


def server_token(path: str | None) -> str | None:
    """The dispatcher's token: from ``--auth-token-file``, else the environment; None = no authentication."""
    if path:
        return read_token(path, "auth_token_file")
    return os.environ.get(TOKEN_ENV, "").strip() or None


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = bearer(token).encode()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any,
    ) -> Any:
        handler = await continuation(details)
        method: str = details.method or ""
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        given = next((value for key, value in details.invocation_metadata or () if key == AUTHORIZATION), "")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self._expected):
            return handler
        DISPATCHER_REQUESTS.labels(method.rsplit("/", 1)[-1], grpc.StatusCode.UNAUTHENTICATED.name).inc()
        return _denied(handler)


def _denied(handler: Any) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)
        yield  # pragma: no cover - abort raises

    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)
