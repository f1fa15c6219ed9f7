"""Every domain exception, each declaring once what it means at the edges.

Each class declares the CLI's exit code (``exit_code``) and a server's gRPC status (``grpc_status``, a
``grpc.StatusCode`` name: this module does not import grpc). The CLI, the servers (``serving/status.py``)
and the dispatcher client all map from these declarations, both ways: a server sends the class name with the
status, and the client raises the same class again.

An error about one input field carries the field's name as data (``field``, the name in
:class:`anesbench.engine.config.RunConfig` or the option's own); a message naming another setting writes it
``{name}`` and lists it in ``mentions`` (only listed names are replaced: a ``{question}`` quoted from a
template stays). Each edge renders them in its own terms (``--concurrency`` on the command line,
``spec.concurrency`` over gRPC); a server writes in its own settings first (``settle``), the rest stays data::

    >>> error = InvalidInput("out.csv already exists; pass {force} to replace it", field="out",
    ...                      mentions=("force",))
    >>> error.render(lambda name: "--" + name.replace("_", "-"))   # the CLI's names
    '--out: out.csv already exists; pass --force to replace it'
    >>> str(error)                                                # a log line: the settings' own names
    'out: out.csv already exists; pass force to replace it'

Callers catch at the level they care about, from ``AnesbenchError`` down: ``InvalidInput`` (exit 2),
``Unavailable`` (worth trying later), ``InferenceError`` (the model server failed), ``HttpError`` (the
transport failed), each with narrower classes below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

BY_NAME: dict[str, type[AnesbenchError]] = {}  # what a server sends along with the status -> the class
BY_STATUS: dict[str, type[AnesbenchError]] = {}  # a gRPC status name -> the most general class declaring it


class AnesbenchError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: ClassVar[int] = EXIT_FAILURE
    grpc_status: ClassVar[str] = "INTERNAL"
    retryable: ClassVar[bool] = False  # would the same call, made again later, possibly succeed?

    def __init__(self, message: str = "", *, field: str | None = None, mentions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.mentions = tuple(mentions)  # other settings the message names as {name}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        BY_NAME[cls.__name__] = cls
        if "grpc_status" in cls.__dict__:
            BY_STATUS.setdefault(cls.grpc_status, cls)  # the first (most general) class owns a status

    def render(self, name_field: Callable[[str], str] | None = None) -> str:
        """The message, prefixed by the field and with its mentions as this edge names them (``--concurrency: ...``)."""
        name = name_field or str
        message = self.message or type(self).__name__
        for setting in self.mentions:
            message = message.replace(f"{{{setting}}}", name(setting))
        return message if self.field is None else f"{name(self.field)}: {message}"

    def settle(self, name_setting: Callable[[str], str | None]) -> None:
        """Write into the message the mentions this edge names (None: not its own); the others stay data."""
        named = {setting: name_setting(setting) for setting in self.mentions}
        for setting, name in named.items():
            if name is not None:
                self.message = self.message.replace(f"{{{setting}}}", name)
        self.mentions = tuple(setting for setting, name in named.items() if name is None)

    def __str__(self) -> str:
        return self.render()


class InvalidInput(AnesbenchError):
    """Input that can never succeed as given: the message says what and where."""

    exit_code = EXIT_BAD_INPUT
    grpc_status = "INVALID_ARGUMENT"


class ConfigConflict(InvalidInput):
    """A run id that already exists with a different configuration."""

    grpc_status = "FAILED_PRECONDITION"


class NotFound(AnesbenchError):
    """A run, dataset or other named thing that does not exist."""

    exit_code = EXIT_BAD_INPUT
    grpc_status = "NOT_FOUND"


class PermissionDenied(AnesbenchError):
    """A request for something the server is not allowed to do (e.g. a foreign endpoint)."""

    exit_code = EXIT_BAD_INPUT
    grpc_status = "PERMISSION_DENIED"


class Unauthenticated(PermissionDenied):
    """A call without the bearer token the dispatcher requires (ANESBENCH_DISPATCHER_TOKEN)."""

    grpc_status = "UNAUTHENTICATED"


class Unavailable(AnesbenchError):
    """A service that is down, starting or busy: the same call may succeed later."""

    grpc_status = "UNAVAILABLE"
    retryable = True


class QuotaExceeded(AnesbenchError):
    """A request would take more than the server grants (an upload's size, the store's budget)."""

    grpc_status = "RESOURCE_EXHAUSTED"


class GraderUnavailable(Unavailable):
    """The remote grader could not be reached."""


class DispatcherUnavailable(Unavailable):
    """The dispatcher could not be reached."""


class Draining(Unavailable):
    """The dispatcher is shutting down and takes no new runs."""


class StoreBusy(Unavailable):
    """The DuckDB file is held by another process."""


class DownloadFailed(Unavailable):
    """A download failed: a dataset from the Hugging Face Hub, or a file a tool fetches."""


class InferenceError(AnesbenchError):
    """The inference server answered with an error that retrying will not fix."""

    grpc_status = "UNAVAILABLE"
    attempts: int = 1  # how many attempts were made before giving up


class RetryableInferenceError(InferenceError):
    """A transient inference failure (429, 5xx, reset, timeout); ``retry_after`` in seconds if given."""

    retryable = True

    def __init__(self, message: str, *, cause: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.retry_after = retry_after


class FatalInferenceError(InferenceError):
    """Every request would fail the same way (bad key, unknown model or path, untrusted TLS, no DNS): stop."""


class ChoicesRefused(InferenceError):
    """The server does not accept ``n > 1`` (HTTP 400/422 naming ``n``): the engine sends the samples one by one."""


class ModelNotReady(InferenceError):
    """An InferenceService the run needs did not become Ready before the deadline."""


class KubeApiError(InferenceError):
    """The Kubernetes API answered with an error or could not be reached."""


class HttpError(AnesbenchError):
    """The HTTP transport failed: no connection, a broken or malformed response, a failed proxy."""

    grpc_status = "UNAVAILABLE"
    retryable = True
    fatal: ClassVar[bool] = False  # True: every request to this server would fail the same way


class ConnectError(HttpError):
    """No connection to the server (or the proxy): refused, unreachable, reset during the handshake."""


class ConnectTimeout(ConnectError):
    """No connection within the connect timeout."""


class ReadError(HttpError):
    """The connection closed or broke before the response ended."""


class RemoteProtocolError(HttpError):
    """The server's bytes were not a valid HTTP response."""


class ProxyError(HttpError):
    """The proxy failed the request or refused to open a tunnel."""


class FatalHttpError(HttpError):
    """A transport failure that retrying cannot fix."""

    retryable = False
    fatal = True


class CertificateError(FatalHttpError):
    """TLS failed: the certificate is not trusted (wrong or missing CA bundle), or TLS itself failed."""


class NameResolutionError(FatalHttpError):
    """The host name does not resolve."""


class ProxyAuthenticationRequired(FatalHttpError):
    """The proxy answered 407: its credentials (in HTTPS_PROXY/HTTP_PROXY) are missing or wrong."""


class StartupFailed(AnesbenchError):
    """A service started by ``anesbench up`` did not come up, or died."""


class RunFailed(AnesbenchError):
    """A run ended (failed or cancelled) without a result for every item; the same run id resumes it."""

    grpc_status = "ABORTED"


class ServerError(AnesbenchError):
    """The server reported an internal error (a bug, see its log): retrying the same call will not help."""

    grpc_status = "INTERNAL"


class EndpointNotReady(InferenceError):
    """Preflight: the endpoint did not become reachable and healthy in time (exit 1, no run row)."""


class EndpointsUnreachable(InferenceError):
    """The circuit breaker opened: every endpoint of the model keeps failing; the run stops, resumable."""


class Ungradable(AnesbenchError):
    """One reply the grader cannot handle (too large, over its deadline): recorded on its row, the run goes on."""


class StoreWriteFailed(AnesbenchError):
    """The result store cannot write: the run stops at once (exit 1)."""
