"""Who may call what on the dispatcher: two bearer-token roles (the check itself is ``serving.TokenRoles``).

* **runner** (``--auth-token-file``, or ``$ANESBENCH_DISPATCHER_TOKEN``): every method, StartRun and
  CancelRun included; what CronJobs and operators use.
* **reader** (``--read-token-file``): :data:`READ_METHODS` only, for dashboards and analysts; anything else
  is PERMISSION_DENIED.

Without either token the API is open (loopback development). Health checking stays open; reflection
needs a token of either role. How a client finds and sends its token is :mod:`anesbench.wire.auth`.
"""

from __future__ import annotations

import os

import grpc

from anesbench.dispatcher.service import DISPATCHER_SERVICE
from anesbench.errors import InvalidInput
from anesbench.metrics import DISPATCHER_REQUESTS
from anesbench.serving import REFLECTION_PREFIX, TokenRoles, read_token
from anesbench.wire.auth import TOKEN_ENV, TOKEN_FILE_ENV

RUNNER, READER = "runner", "reader"
READ_METHODS = frozenset({"ListRuns", "GetRun", "WatchRun", "GetLeaderboard", "ExportResults"})
DENIED = f"this dispatcher requires a bearer token: pass --dispatcher-token-file, or set {TOKEN_FILE_ENV} or {TOKEN_ENV}"


def server_token(path: str | None) -> str | None:
    """The runner token: from ``--auth-token-file``, else the environment; None = no authentication."""
    if path:
        return read_token(path, "auth_token_file")
    return os.environ.get(TOKEN_ENV, "").strip() or None


def role_allows(role: str, method: str) -> bool:
    """Whether a token of ``role`` may call ``method`` (a full gRPC method name).

    >>> role_allows(READER, "/anesbench.v1.Dispatcher/ListRuns"), role_allows(READER, "/anesbench.v1.Dispatcher/StartRun")
    (True, False)
    """
    if role == RUNNER:
        return True
    service, _, name = method.lstrip("/").rpartition("/")
    return method.startswith(REFLECTION_PREFIX) or (service == DISPATCHER_SERVICE and name in READ_METHODS)


def token_roles(runner: str | None, reader: str | None) -> TokenRoles | None:
    """The interceptor for these tokens; None when there are none (no authentication)."""
    if reader is not None and runner is None:
        raise InvalidInput("a reader token needs a runner token ({auth_token_file}) too", field="read_token_file",
                           mentions=("auth_token_file",))
    if runner is None:
        return None
    if reader == runner:
        raise InvalidInput("must differ from the runner token", field="read_token_file")
    roles = {runner: RUNNER, **({reader: READER} if reader else {})}
    return TokenRoles(roles, role_allows, unauthenticated=DENIED, on_refused=_count)


def _count(method: str, code: grpc.StatusCode) -> None:
    DISPATCHER_REQUESTS.labels(method, code.name).inc()
