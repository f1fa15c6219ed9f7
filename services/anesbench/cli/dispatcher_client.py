"""A small gRPC client for the dispatcher: one channel, the server's exceptions raised again here.

* A dispatcher that cannot be reached fails within :data:`CONNECT_TIMEOUT` seconds with a hint about
  ``--dispatcher``, not after a 60 s DEADLINE_EXCEEDED. One that accepts the connection but not the
  session (a plain-text client at a TLS server, a CA that did not sign its certificate) fails at the
  first refused attempt, saying so: waiting would not change it.
* Status codes become the exceptions the server raised (``serving.status.error_from_rpc``, from the
  declarations in ``anesbench.errors``). Only :class:`~anesbench.errors.Unavailable` is worth trying
  again: :func:`reconnecting` retries it with exponential backoff (tenacity, like HTTP retries); a
  server bug (INTERNAL -> :class:`~anesbench.errors.ServerError`) is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from anesbench.errors import AnesbenchError, DispatcherUnavailable, InvalidInput, Unavailable
from anesbench.serving import CLIENT_OPTIONS
from anesbench.serving.security import open_channel
from anesbench.serving.status import error_from_rpc
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.auth import CA_ENV, client_metadata, dispatcher_tls

T = TypeVar("T")
CONNECT_TIMEOUT = 5.0  # seconds to reach the dispatcher before saying the address is wrong
CALL_TIMEOUT = 60.0  # seconds for one unary call once connected
RECONNECT_FOR = 600.0  # seconds to keep re-attaching while a dispatcher restarts


def reconnecting(for_seconds: float = RECONNECT_FOR, *, initial: float = 0.5, maximum: float = 10.0) -> AsyncRetrying:
    """Retry while the dispatcher is unavailable (restarting, draining), with backoff and jitter."""
    return AsyncRetrying(
        retry=retry_if_exception_type(Unavailable),
        stop=stop_after_delay(for_seconds),
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial),
        reraise=True,
    )


async def _listening(target: str) -> bool:
    """Whether something accepts TCP connections at ``target`` (HOST:PORT or [V6]:PORT)."""
    host, _, port = target.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), 1.0)
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    return True


class DispatcherClient:
    def __init__(self, target: str, *, timeout: float = CALL_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.target = target
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tls = dispatcher_tls()
        self._channel = open_channel(target, CLIENT_OPTIONS, self.tls)
        self.metadata = client_metadata()  # the bearer token, when the dispatcher requires one
        self.stub = dispatcher_pb2_grpc.DispatcherStub(self._channel)

    async def __aenter__(self) -> DispatcherClient:
        await self.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    async def ready(self) -> None:
        """Wait until the channel is connected; DispatcherUnavailable with a hint after ``connect_timeout``."""
        try:
            await asyncio.wait_for(self._connected(), self.connect_timeout)
        except TimeoutError:
            raise DispatcherUnavailable(
                f"cannot reach a dispatcher at {self.target} within {self.connect_timeout:g} s; check "
                "--dispatcher HOST:PORT (is `anesbench serve dispatcher` listening there?)"
            ) from None

    async def _connected(self) -> None:
        state = self._channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.READY:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE and await _listening(self.target):
                raise self._refused_session()
            await self._channel.wait_for_state_change(state)
            state = self._channel.get_state(try_to_connect=True)

    def _refused_session(self) -> InvalidInput:
        if self.tls is None:
            return InvalidInput(
                f"{self.target} accepts connections but not plain-text gRPC: it probably requires TLS; pass "
                "{dispatcher_ca} (or set $" + CA_ENV + ") with the CA that signed its certificate",
                mentions=("dispatcher_ca",))
        return InvalidInput(
            f"the TLS handshake with {self.target} failed: check that {{dispatcher_ca}} names the CA that signed "
            "its certificate, for this host name, and that it serves TLS at all", mentions=("dispatcher_ca",))

    def error_for(self, error: grpc.aio.AioRpcError) -> AnesbenchError:
        """The exception the dispatcher raised (or DispatcherUnavailable when it did not answer)."""
        return error_from_rpc(error, unreachable=f"dispatcher {self.target}")

    async def call(self, method: Callable[..., Awaitable[T]], request: object, *, timeout: float | None = None) -> T:
        try:
            return await method(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            raise self.error_for(error) from None

    async def watch(self, run_id: str) -> AsyncIterator[pb.RunEvent]:
        """The run's progress events until the run ends or the stream breaks (Unavailable)."""
        await self.ready()
        try:
            async for event in self.stub.WatchRun(pb.WatchRunRequest(run_id=run_id), metadata=self.metadata):
                yield event
        except grpc.aio.AioRpcError as error:
            raise self.error_for(error) from None
