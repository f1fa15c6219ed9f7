"""The dispatcher process: RunManager + servicer behind the shared serving lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from anesbench import serving
from anesbench.dispatcher.auth import token_roles
from anesbench.dispatcher.manager import RunManager
from anesbench.dispatcher.service import DISPATCHER_SERVICE, DispatcherServicer
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.errors import AnesbenchError
from anesbench.grader.multi import MultiConnectionGrader
from anesbench.store import Store
from anesbench.store.async_store import AsyncStore
from anesbench.v1 import dispatcher_pb2_grpc

__all__ = ["DispatcherApp", "DispatcherSettings", "serve"]
log = logging.getLogger(__name__)


class DispatcherApp:
    """The dispatcher as a :class:`anesbench.serving.Service`."""

    service_names: Sequence[str] = (DISPATCHER_SERVICE,)

    def __init__(self, settings: DispatcherSettings) -> None:
        self.store = AsyncStore(Store(settings.db))
        self.grader = MultiConnectionGrader(settings.grader, settings.grader_connections,
                                            give_up_after=settings.grader_grace, tls=settings.grader_tls,
                                            token=settings.grader_token)
        self.manager = RunManager(self.store, self.grader, settings)
        self._drained: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(DispatcherServicer(self.manager), server)

    async def start(self) -> None:
        """Adopt the on-demand models started before a restart, then resume every unfinished run,
        before reporting SERVING."""
        if self.manager.models is not None:
            try:
                await self.manager.models.recover()
            except AnesbenchError as exc:  # serve anyway: runs wait for the API like for a model
                log.error("cannot look for on-demand models started before a restart: %s", exc)
        resumed = await self.manager.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished run(s): %s", len(resumed), ", ".join(resumed))

    def drain(self) -> None:
        self._drained = asyncio.get_running_loop().create_task(self.manager.drain())

    async def shutdown(self) -> None:
        await (self._drained or self.manager.drain())
        if self.manager.models is not None:
            await self.manager.models.close()
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
