"""Optional bearer-token authentication of the dispatcher's gRPC API.

When the dispatcher has a token (``--auth-token-file`` or ``$ANESBENCH_DISPATCHER_TOKEN``), every call
of ``anesbench.v1.Dispatcher`` must carry ``authorization: Bearer <token>`` metadata, else it fails
with UNAUTHENTICATED before reaching the servicer. Health checking and reflection stay open: kubelet's
native gRPC probes cannot send metadata, and neither reveals or changes anything. Clients read the
token from ``$ANESBENCH_DISPATCHER_TOKEN`` or the file named by ``$ANESBENCH_DISPATCHER_TOKEN_FILE``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from anesbench.errors import InvalidInput
from anesbench.metrics import DISPATCHER_REQUESTS

TOKEN_ENV = "ANESBENCH_DISPATCHER_TOKEN"
TOKEN_FILE_ENV = "ANESBENCH_DISPATCHER_TOKEN_FILE"
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DENIED = "this dispatcher requires a bearer token: set ANESBENCH_DISPATCHER_TOKEN or ANESBENCH_DISPATCHER_TOKEN_FILE"


def _read(path: str, what: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"{what}: cannot read {path}: {exc.strerror}") from None
    if not token:
        raise InvalidInput(f"{what}: {path} is empty")
    return token


def server_token(path: str | None) -> str | None:
    """The dispatcher's token: from ``--auth-token-file``, else the environment; None = no authentication."""
    if path:
        return _read(path, "--auth-token-file")
    return os.environ.get(TOKEN_ENV, "").strip() or None


def client_token() -> str | None:
    """The token a client sends: $ANESBENCH_DISPATCHER_TOKEN, else the file in $ANESBENCH_DISPATCHER_TOKEN_FILE."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return _read(path, f"${TOKEN_FILE_ENV}") if path else None


def client_metadata() -> tuple[tuple[str, str], ...]:
    token = client_token()
    return (("authorization", f"Bearer {token}"),) if token else ()


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any,
    ) -> Any:
        handler = await continuation(details)
        method: str = details.method or ""
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        given = next((value for key, value in details.invocation_metadata or () if key == "authorization"), "")
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
