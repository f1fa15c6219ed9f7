"""The servers' security: TLS from PEM files named on a command line, and bearer tokens with roles.

A server given a client CA asks every peer for a certificate signed by it (mutual TLS). A client given
no CA trusts the system's roots; given a certificate and key it presents them (for a mutual-TLS server).

Each token grants one role; a policy says which methods a role may call, checked before a call reaches
a servicer. No token, or one the server does not know: UNAUTHENTICATED. A known token whose role does not
allow the method: PERMISSION_DENIED. Health checking stays open, because kubelet's native gRPC probes
cannot send metadata and it reveals nothing. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
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
PEM_MARK = b"-----BEGIN "


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None


def read_token(path: str, field: str) -> str:
    token = _read(path, field).decode("utf-8").strip()
    if not token:
        raise InvalidInput(f"{path} is empty", field=field)
    return token


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return ((AUTHORIZATION, f"Bearer {token}"),) if token else ()


class TokenRoles(grpc.aio.ServerInterceptor):
    def __init__(self, roles: Mapping[str, str], policy: Policy, *, unauthenticated: str,
                 on_refused: Refusal | None = None) -> None:
        """``roles``: token -> role; ``unauthenticated``: the message a caller without a valid token gets."""
        self._roles = tuple((f"Bearer {token}".encode(), role) for token, role in roles.items())
        self._policy = policy
        self._unauthenticated = unauthenticated
        self._on_refused = on_refused

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        method: str = details.method or ""
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        given = next((value for key, value in details.invocation_metadata or () if key == AUTHORIZATION), "")
        role = None
        for expected, known in self._roles:  # every comparison runs, so timing says nothing about which matched
            if isinstance(given, str) and hmac.compare_digest(given.encode(), expected):
                role = known
        if role is None:
            return self._refuse(handler, method, grpc.StatusCode.UNAUTHENTICATED, self._unauthenticated)
        if not self._policy(role, method):
            return self._refuse(handler, method, grpc.StatusCode.PERMISSION_DENIED,
                                f"the {role} token may not call {method.rsplit('/', 1)[-1]}")
        return handler

    def _refuse(self, handler: Any, method: str, code: grpc.StatusCode, message: str) -> Any:
        if self._on_refused is not None:
            self._on_refused(method.rsplit("/", 1)[-1], code)

        async def refusal(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(code, message)  # a coroutine serves every kind, streaming responses too

        # The handlers gRPC builds are named tuples: keep the (de)serializers, replace the behaviour.
        kind = "stream_" if handler.request_streaming else "unary_"
        kind += "stream" if handler.response_streaming else "unary"
        return handler._replace(**{kind: refusal})


def read_pem(path: str, field: str) -> bytes:
    data = _read(path, field)
    if PEM_MARK not in data:
        raise InvalidInput(f"{path} holds no PEM block", field=field)
    return data


@dataclass(frozen=True)
class ServerTls:
    cert: bytes
    key: bytes
    client_ca: bytes | None = None  # set: mutual TLS, peers must present a certificate it signed

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.client_ca,
                                           require_client_auth=self.client_ca is not None)


@dataclass(frozen=True)
class ClientTls:
    ca: bytes | None = None  # None: the system's trusted roots
    cert: bytes | None = None  # with ``key``: this client's certificate, for mutual TLS
    key: bytes | None = None


def server_tls(cert: str | None, key: str | None, client_ca: str | None) -> ServerTls | None:
    """A server's TLS from its certificate, key and (for mutual TLS) client CA files; None: plain text."""
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidInput("needs {tls_cert} and {tls_key} (mutual TLS is TLS first)", field="tls_client_ca",
                               mentions=("tls_cert", "tls_key"))
        return None
    if cert is None or key is None:
        raise InvalidInput("{tls_cert} and {tls_key} go together", field="tls_key" if key is None else "tls_cert",
                           mentions=("tls_cert", "tls_key"))
    return ServerTls(read_pem(cert, "tls_cert"), read_pem(key, "tls_key"),
                     read_pem(client_ca, "tls_client_ca") if client_ca else None)


def client_tls(ca: str | None, cert: str | None = None, key: str | None = None, *, prefix: str) -> ClientTls | None:
    """A client's TLS from a CA file and, for mutual TLS, a certificate and key; None: plain text.

    ``prefix`` names the settings in messages (``grader`` -> ``grader_ca``, ``grader_cert``, ``grader_key``).
    """
    if (cert is None) != (key is None):
        raise InvalidInput("a client certificate needs its key and the other way round",
                           field=f"{prefix}_key" if key is None else f"{prefix}_cert")
    if ca is None and cert is None:
        return None
    return ClientTls(read_pem(ca, f"{prefix}_ca") if ca else None,
                     read_pem(cert, f"{prefix}_cert") if cert else None,
                     read_pem(key, f"{prefix}_key") if key else None)


def open_channel(target: str, options: tuple[tuple[str, int], ...], tls: ClientTls | None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
    return grpc.aio.secure_channel(target, creds, options=options)
