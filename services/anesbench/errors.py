"""Domain exceptions, mapped once to exit codes (cli) and gRPC status codes (servers).

Callers catch at the level they care about::

    AnesbenchError
    ├── InvalidInput        bad dataset, flag, template or request   -> exit 2, INVALID_ARGUMENT
    │   └── ConfigConflict  a run id reused with another configuration -> exit 2, FAILED_PRECONDITION
    ├── NotFound            unknown run id or dataset name           -> exit 2, NOT_FOUND
    ├── PermissionDenied    endpoint outside the allowed prefixes    -> exit 2, PERMISSION_DENIED
    ├── InferenceError      the model server failed for good          -> exit 1, UNAVAILABLE
    │   └── RetryableInferenceError  a failure worth another attempt
    ├── GraderUnavailable   the grader service cannot be reached     -> exit 1, UNAVAILABLE
    └── RunFailed           a run ended with items that never got an answer -> exit 1, ABORTED
"""

from __future__ import annotations


class AnesbenchError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidInput(AnesbenchError):
    """Input that can never succeed as given: the message says what and where."""


class ConfigConflict(InvalidInput):
    """A run id that already exists with a different configuration."""


class NotFound(AnesbenchError):
    """A run, dataset or other named thing that does not exist."""


class PermissionDenied(AnesbenchError):
    """A request for something the server is not allowed to do (e.g. a foreign endpoint)."""


class InferenceError(AnesbenchError):
    """The inference server answered with an error that retrying will not fix."""

    attempts: int = 1  # how many attempts were made before giving up


class RetryableInferenceError(InferenceError):
    """A transient inference failure (429, 5xx, reset, timeout); ``retry_after`` in seconds if given."""

    def __init__(self, message: str, *, cause: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.retry_after = retry_after


class GraderUnavailable(AnesbenchError):
    """The remote grader could not be reached."""


class RunFailed(AnesbenchError):
    """A run finished but some items still have no result."""


# --- issue 9 (preflight, breaker, isolation, store): run-level faults --------------------------------
class EndpointNotReady(InferenceError):
    """Preflight: the endpoint did not become reachable and healthy in time (exit 1, no run row)."""


class EndpointsUnreachable(InferenceError):
    """The circuit breaker opened: every endpoint of the model keeps failing; the run stops, resumable."""


class Ungradable(AnesbenchError):
    """One reply the grader cannot handle (too large, over its deadline): recorded on its row, the run goes on."""


class StoreWriteFailed(AnesbenchError):
    """The result store cannot write: the run stops at once (exit 1)."""
