"""Bearer tokens with roles, checked before a call reaches a servicer (the servers' side of authentication).

Each token grants one role; a policy says which methods a role may call. No token, or one the server
does not know: UNAUTHENTICATED. A known token whose role does not allow the method: PERMISSION_DENIED.
Health checking stays open, because kubelet's native gRPC probes cannot send metadata and it reveals
nothing. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

from anesbench.errors import InvalidInput

AUTHORIZATION = "authorization"
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
REFLECTION_PREFIX = "/grpc.reflection."

Policy = Callable[[str, str], bool]
"""Whether ``role`` may call ``method`` (a full name, ``/anesbench.v1.Dispatcher/StartRun``)."""
Refusal = Callable[[str, grpc.StatusCode], None]
"""Told the method's short name and the status of every refused call (for metrics)."""


def read_token(path: str, field: str) -> str:
    """The token in the file at ``path``; bad input about ``field`` (the setting that named the file) otherwise."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None
    if not token:
        raise InvalidInput(f"{path} is empty", field=field)
    return token


def bearer(token: str) -> str:
    """The metadata value that carries ``token``.

    >>> bearer("t0ken")
    'Bearer t0ken'
    """
    return f"Bearer {token}"


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that sends ``token`` (none without one)."""
    return ((AUTHORIZATION, bearer(token)),) if token else ()


class TokenRoles(grpc.aio.ServerInterceptor):
    def __init__(self, roles: Mapping[str, str], policy: Policy, *, unauthenticated: str,
                 on_refused: Refusal | None = None) -> None:
        """``roles``: token -> role; ``unauthenticated``: the message a caller without a valid token gets."""
        self._roles = tuple((bearer(token).encode(), role) for token, role in roles.items())
        self._policy = policy
        self._unauthenticated = unauthenticated
        self._on_refused = on_refused

    def role_of(self, given: str) -> str | None:
        found = None
        for expected, role in self._roles:  # every comparison runs, so timing says nothing about which matched
            if hmac.compare_digest(given.encode(), expected):
                found = role
        return found

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        method: str = details.method or ""
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        given = next((value for key, value in details.invocation_metadata or () if key == AUTHORIZATION), "")
        role = self.role_of(given) if isinstance(given, str) else None
        if role is None:
            return self._refuse(handler, method, grpc.StatusCode.UNAUTHENTICATED, self._unauthenticated)
        if not self._policy(role, method):
            short = method.rsplit("/", 1)[-1]
            return self._refuse(handler, method, grpc.StatusCode.PERMISSION_DENIED,
                                f"the {role} token may not call {short}")
        return handler

    def _refuse(self, handler: Any, method: str, code: grpc.StatusCode, message: str) -> Any:
        if self._on_refused is not None:
            self._on_refused(method.rsplit("/", 1)[-1], code)
        return _refusing(handler, code, message)


def _refusing(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # pragma: no cover - abort raises

    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)
