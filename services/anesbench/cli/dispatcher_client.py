"""A small gRPC client for the dispatcher: one channel, status codes mapped back to our errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from anesbench.errors import AnesbenchError, ConfigConflict, InvalidInput, NotFound, PermissionDenied
from anesbench.serving import CLIENT_OPTIONS
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc

T = TypeVar("T")

ERROR_FOR_STATUS: dict[grpc.StatusCode, type[AnesbenchError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.FAILED_PRECONDITION: ConfigConflict,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


class DispatcherUnavailable(AnesbenchError):
    """The dispatcher could not be reached or failed."""


def to_error(target: str, error: grpc.aio.AioRpcError) -> AnesbenchError:
    kind = ERROR_FOR_STATUS.get(error.code())
    if kind is not None:
        return kind(error.details() or error.code().name)
    return DispatcherUnavailable(f"dispatcher {target}: {error.code().name}: {error.details()}")


class DispatcherClient:
    def __init__(self, target: str, *, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS)
        self.stub = dispatcher_pb2_grpc.DispatcherStub(self._channel)

    async def __aenter__(self) -> DispatcherClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    async def call(self, method: Callable[..., Awaitable[T]], request: object, *, timeout: float | None = None) -> T:
        try:
            return await method(request, timeout=timeout or self.timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            raise to_error(self.target, error) from None

    async def watch(self, run_id: str) -> AsyncIterator[pb.RunEvent]:
        try:
            async for event in self.stub.WatchRun(pb.WatchRunRequest(run_id=run_id), wait_for_ready=True):
                yield event
        except grpc.aio.AioRpcError as error:
            raise to_error(self.target, error) from None
