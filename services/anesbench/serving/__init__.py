"""Server plumbing shared by the grader and dispatcher services.

* :func:`rpc` — decorate every servicer method: domain exceptions become status codes (one mapping,
  :func:`status_for`; :func:`error_from_rpc` on the client), outcomes are reported to an observer for metrics.
* :func:`serve` / :func:`run` — a grpc.aio server with message limits, keepalive, health, reflection
  and a SIGTERM drain, for a :class:`Service`.
"""

from anesbench.serving._lifecycle import ServeConfig, Service, hostport, run, serve
from anesbench.serving._server import CLIENT_OPTIONS, MAX_MESSAGE_BYTES, SERVER_OPTIONS, build_server
from anesbench.serving._status import INTERNAL_MESSAGE, Observer, error_from_rpc, rpc, status_for

__all__ = [
    "CLIENT_OPTIONS",
    "INTERNAL_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "SERVER_OPTIONS",
    "Observer",
    "ServeConfig",
    "Service",
    "build_server",
    "error_from_rpc",
    "hostport",
    "rpc",
    "run",
    "serve",
    "status_for",
]
