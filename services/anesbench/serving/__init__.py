"""Server plumbing shared by the grader and dispatcher services.

* :func:`rpc` — decorate every servicer method: domain exceptions become status codes (one mapping,
  :func:`status_for`; :func:`error_from_rpc` on the client), outcomes are reported to an observer for metrics.
* :func:`serve` / :func:`run` — a grpc.aio server with message limits, keepalive, health, reflection
  and a SIGTERM drain, for a :class:`Service`; TLS (:class:`ServerTls`) and bearer tokens with roles
  (:class:`TokenRoles`) when configured, and the client halves of both (:class:`ClientTls`, :func:`token_metadata`).
"""

from anesbench.serving._security import (
    REFLECTION_PREFIX,
    ClientTls,
    ServerTls,
    TokenRoles,
    client_tls,
    open_channel,
    read_token,
    server_tls,
    token_metadata,
)
from anesbench.serving._server import CLIENT_OPTIONS, ServeConfig, Service, build_server, run, serve
from anesbench.serving._status import INTERNAL_MESSAGE, error_from_rpc, rpc, status_for

__all__ = [
    "CLIENT_OPTIONS",
    "INTERNAL_MESSAGE",
    "REFLECTION_PREFIX",
    "ClientTls",
    "ServeConfig",
    "ServerTls",
    "Service",
    "TokenRoles",
    "build_server",
    "client_tls",
    "error_from_rpc",
    "open_channel",
    "read_token",
    "rpc",
    "run",
    "serve",
    "server_tls",
    "status_for",
    "token_metadata",
]
