"""Optional bearer-token authentication of the dispatcher's gRPC API (the server's side).

When the dispatcher has a token (``--auth-token-file`` or ``$ANESBENCH_DISPATCHER_TOKEN``), every call
of ``anesbench.v1.Dispatcher`` must carry ``authorization: Bearer <token>`` metadata, else it fails
with UNAUTHENTICATED before reaching the servicer. Health checking and reflection stay open: kubelet's
native gRPC probes cannot send metadata, and neither reveals or changes anything. How a client finds
and sends the token is :mod:`anesbench.wire.auth`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from anesbench.metrics import DISPATCHER_REQUESTS
from anesbench.wire.auth import AUTHORIZATION, TOKEN_ENV, TOKEN_FILE_ENV, bearer, read_token

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
