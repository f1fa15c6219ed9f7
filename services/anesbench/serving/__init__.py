"""Server plumbing shared by the grader and dispatcher services.

* :func:`rpc` — decorate every servicer method: domain exceptions become status codes (one mapping,
  :func:`status_for`), outcomes are reported to an observer for metrics.
* :func:`serve` / :func:`run` — a grpc.aio server with message limits, keepalive, health, reflection
  and a SIGTERM drain, for a :class:`Service`.
"""

from anesbench.serving._lifecycle import ServeConfig, Service, hostport, run, serve
from anesbench.serving._server import CLIENT_OPTIONS, MAX_MESSAGE_BYTES, SERVER_OPTIONS, build_server
from anesbench.serving._status import INTERNAL_MESSAGE, Observer, rpc, status_for

__all__ = [
    "CLIENT_OPTIONS",
    "INTERNAL_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "SERVER_OPTIONS",
    "Observer",
    "ServeConfig",
    "Service",
    "build_server",
    "hostport",
    "rpc",
    "run",
    "serve",
    "status_for",
]
