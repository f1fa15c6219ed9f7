"""Server plumbing shared by the grader and dispatcher services.

* :func:`rpc` — decorate every servicer method: domain exceptions become status codes (one mapping,
  :func:`status_for`; :func:`error_from_rpc` on the client), outcomes are reported to an observer for metrics.
* :func:`serve` / :func:`run` — a grpc.aio server with message limits, keepalive, health, reflection
  and a SIGTERM drain, for a :class:`Service`; TLS (:class:`ServerTls`) and bearer tokens with roles
  (:class:`TokenRoles`) when configured, and the client halves of both (:class:`ClientTls`, :func:`token_metadata`).
"""

from anesbench.serving._auth import AUTHORIZATION, REFLECTION_PREFIX, TokenRoles, bearer, read_token, token_metadata
from anesbench.serving._lifecycle import ServeConfig, Service, hostport, run, serve
from anesbench.serving._server import CLIENT_OPTIONS, MAX_MESSAGE_BYTES, SERVER_OPTIONS, build_server
from anesbench.serving._status import INTERNAL_MESSAGE, Observer, error_from_rpc, rpc, status_for
from anesbench.serving._tls import ClientTls, ServerTls, client_tls, open_channel, server_tls

__all__ = [
    "AUTHORIZATION",
    "CLIENT_OPTIONS",
    "INTERNAL_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "REFLECTION_PREFIX",
    "SERVER_OPTIONS",
    "ClientTls",
    "Observer",
    "ServeConfig",
    "ServerTls",
    "Service",
    "TokenRoles",
    "bearer",
    "build_server",
    "client_tls",
    "error_from_rpc",
    "hostport",
    "open_channel",
    "read_token",
    "rpc",
    "run",
    "serve",
    "server_tls",
    "status_for",
    "token_metadata",
]
