"""The servers' edge of the error model: our exceptions become the gRPC status they declare.

Servicer methods raise ``anesbench.errors`` exceptions and decorate themselves with :func:`rpc`;
the client sees the status code each exception declares (``grpc_status``) and its message, never a
traceback. The trailing metadata names the exception's class, field and the settings its message
mentions, so that a client raises the same class again (:func:`error_from_rpc`) and names them in its
own terms. A server names its own settings (``rpc(settings=...)``, e.g. the dispatcher's
``--datasets-dir``) before the error leaves it. ``grader.server`` shows the use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import grpc

from anesbench import errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Observer = Callable[[str, grpc.StatusCode], None]
"""Called once per finished RPC with the method name and its final status code (for metrics)."""

INTERNAL_MESSAGE = "internal error in the server; details are in its log"

FieldNamer = Callable[[str], str]
"""How a service names an error's ``field`` in its own request messages (e.g. ``spec.concurrency``)."""
SettingNamer = Callable[[str], "str | None"]
"""How a server names its own settings in a message (``datasets_dir`` -> ``--datasets-dir``); None: not its own."""
# Status details travel in an HTTP/2 trailer; keep them well inside the default 8 KiB metadata limit.
MAX_DETAILS_CHARS = 2000
ERROR_KEY, FIELD_KEY, MESSAGE_KEY = "anesbench-error", "anesbench-field", "anesbench-message-bin"
MENTIONS_KEY = "anesbench-mentions"  # comma-separated setting names
_TRANSPORT_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}


def _clip(message: str) -> str:
    return message if len(message) <= MAX_DETAILS_CHARS else message[: MAX_DETAILS_CHARS - 3] + "..."


def status_for(exc: BaseException, name_field: FieldNamer | None = None) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception raised by a servicer.

    Unknown exceptions (and ours that declare INTERNAL) become INTERNAL with a generic message: their
    text may hold paths, SQL or secrets that the client has no business seeing.
    """
    if isinstance(exc, errors.AnesbenchError) and exc.grpc_status != "INTERNAL":
        return grpc.StatusCode[exc.grpc_status], _clip(exc.render(name_field))
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def trailers_for(exc: BaseException) -> tuple[tuple[str, str | bytes], ...]:
    """What the client needs to raise the same exception: its class, field, mentions and bare message."""
    if not isinstance(exc, errors.AnesbenchError) or exc.grpc_status == "INTERNAL":
        return ((ERROR_KEY, errors.ServerError.__name__),)
    found: list[tuple[str, str | bytes]] = [(ERROR_KEY, type(exc).__name__),
                                            (MESSAGE_KEY, _clip(exc.message).encode())]
    if exc.field is not None and _plain(exc.field):
        found.append((FIELD_KEY, exc.field))
    mentions = [setting for setting in exc.mentions if _plain(setting) and "," not in setting]
    if mentions:
        found.append((MENTIONS_KEY, ",".join(mentions)))
    return tuple(found)


def _plain(name: str) -> bool:
    return name.isascii() and name.isprintable()


def error_from_rpc(error: grpc.aio.AioRpcError, *, unreachable: str) -> errors.AnesbenchError:
    """The exception a server raised, rebuilt on the client from the status and its trailers.

    A status the server did not send itself (the channel could not connect, the deadline passed)
    becomes :class:`errors.DispatcherUnavailable` with ``unreachable`` in its message; a server's
    INTERNAL becomes :class:`errors.ServerError`, which callers must not retry.
    """
    trailers = {key: value for key, value in (error.trailing_metadata() or ())}
    kind = errors.BY_NAME.get(str(trailers.get(ERROR_KEY, "")))
    details = error.details() or error.code().name
    if kind is None:
        if error.code() in _TRANSPORT_CODES:
            return errors.DispatcherUnavailable(f"{unreachable}: {error.code().name}: {details}")
        return errors.BY_STATUS.get(error.code().name, errors.ServerError)(details)
    raw, field, mentions = trailers.get(MESSAGE_KEY), trailers.get(FIELD_KEY), trailers.get(MENTIONS_KEY)
    message = raw.decode(errors="replace") if isinstance(raw, bytes) else details
    field = field if isinstance(field, str) else None
    named = mentions.split(",") if isinstance(mentions, str) else []
    try:
        return kind(message, field=field, mentions=named)
    except TypeError:  # a class with its own constructor: keep the kind's status
        return errors.BY_STATUS.get(kind.grpc_status, errors.ServerError)(message, field=field, mentions=named)


def rpc(
    *, observe: Observer | None = None, fields: FieldNamer | None = None, settings: SettingNamer | None = None,
) -> Callable[[F], F]:
    """Decorate a grpc.aio servicer method: map exceptions to status codes and report the outcome.

    Works for unary handlers (coroutines, including streaming handlers that use ``context.write``)
    and for streaming handlers written as async generators. ``fields`` names an error's field (and
    the request fields its message mentions) the way this service's requests spell it; ``settings``
    names the server's own settings, written into the message before it leaves.
    """

    def decorate(fn: F) -> F:
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async with _outcome(fn.__name__, context, observe, fields, settings):
                    # aclosing: when the call ends early the inner generator's finally blocks still run.
                    async with contextlib.aclosing(fn(self, request, context)) as responses:
                        async for response in responses:
                            yield response

            return cast(F, stream)
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with _outcome(fn.__name__, context, observe, fields, settings):
                    return await fn(self, request, context)

            return cast(F, unary)
        raise TypeError(f"@rpc needs an async def or async generator servicer method, got {fn!r}")

    return decorate


@contextlib.asynccontextmanager
async def _outcome(
    name: str, context: grpc.aio.ServicerContext, observe: Observer | None, fields: FieldNamer | None,
    settings: SettingNamer | None,
) -> AsyncIterator[None]:
    """One call's outcome: an exception becomes its status code, and ``observe`` hears the code."""
    code = grpc.StatusCode.OK
    try:
        yield
        code = _code_set_by_handler(context)
    except (asyncio.CancelledError, GeneratorExit):
        code = grpc.StatusCode.CANCELLED  # the client went away or the server is stopping
        raise
    except grpc.aio.AbortError:
        code = _code_set_by_handler(context)  # the handler called context.abort() itself
        raise
    except Exception as exc:  # domain errors keep their meaning, anything else is INTERNAL
        if settings is not None and isinstance(exc, errors.AnesbenchError):
            exc.settle(settings)  # before the status and the trailers: both carry the settled message
        code, message = status_for(exc, fields)
        if code is grpc.StatusCode.INTERNAL:
            log.error("%s failed unexpectedly", name, exc_info=exc)
        else:  # expected outcomes (bad input from a client, say) are not the server's problem to log loudly
            log.debug("%s -> %s: %s", name, code.name, message)
        await context.abort(code, message, trailing_metadata=trailers_for(exc))
    finally:
        if observe is not None:
            observe(name, code)


def _code_set_by_handler(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
