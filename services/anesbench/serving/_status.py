"""The one place where our domain exceptions become gRPC status codes.

Servicer methods raise ``anesbench.errors`` exceptions and decorate themselves with :func:`rpc`;
the client sees a status code and the exception's message, never a traceback::

    class GraderServicer(grader_pb2_grpc.GraderServicer):
        @rpc(observe=count_request)
        async def Grade(self, request, context):
            raise InvalidInput("request (id 'x'): choices: must not be empty")  # -> INVALID_ARGUMENT
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

# Most specific first: ConfigConflict is an InvalidInput, but has a code of its own.
_STATUS_BY_ERROR: tuple[tuple[type[errors.AnesbenchError], grpc.StatusCode], ...] = (
    (errors.ConfigConflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.InferenceError, grpc.StatusCode.UNAVAILABLE),
    (errors.GraderUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.RunFailed, grpc.StatusCode.ABORTED),
)
# Status details travel in an HTTP/2 trailer; keep them well inside the default 8 KiB metadata limit.
MAX_DETAILS_CHARS = 2000


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception raised by a servicer.

    Unknown exceptions become INTERNAL with a generic message: their text may hold paths, SQL or
    secrets that the client has no business seeing.
    """
    for kind, code in _STATUS_BY_ERROR:
        if isinstance(exc, kind):
            message = str(exc) or kind.__name__
            if len(message) > MAX_DETAILS_CHARS:
                message = message[: MAX_DETAILS_CHARS - 3] + "..."
            return code, message
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def rpc(*, observe: Observer | None = None) -> Callable[[F], F]:
    """Decorate a grpc.aio servicer method: map exceptions to status codes and report the outcome.

    Works for unary handlers (coroutines, including streaming handlers that use ``context.write``)
    and for streaming handlers written as async generators.
    """

    def decorate(fn: F) -> F:
        name = fn.__name__
        if inspect.isasyncgenfunction(fn):
            return cast(F, _wrap_stream(fn, name, observe))
        if inspect.iscoroutinefunction(fn):
            return cast(F, _wrap_unary(fn, name, observe))
        raise TypeError(f"@rpc needs an async def or async generator servicer method, got {fn!r}")

    return decorate


def _wrap_unary(fn: Callable[..., Any], name: str, observe: Observer | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        code = grpc.StatusCode.OK
        try:
            result = await fn(self, request, context)
            code = _code_set_by_handler(context)
            return result
        except (asyncio.CancelledError, GeneratorExit):
            code = grpc.StatusCode.CANCELLED  # the client went away or the server is stopping
            raise
        except grpc.aio.AbortError:
            code = _code_set_by_handler(context)  # the handler called context.abort() itself
            raise
        except Exception as exc:  # domain errors keep their meaning, anything else is INTERNAL
            code, message = _translate(exc, name)
            await context.abort(code, message)
        finally:
            if observe is not None:
                observe(name, code)

    return handler


def _wrap_stream(fn: Callable[..., Any], name: str, observe: Observer | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        code = grpc.StatusCode.OK
        try:
            # aclosing: when the call ends early the inner generator's finally blocks still run.
            async with contextlib.aclosing(fn(self, request, context)) as responses:
                async for response in responses:
                    yield response
            code = _code_set_by_handler(context)
        except (asyncio.CancelledError, GeneratorExit):
            code = grpc.StatusCode.CANCELLED
            raise
        except grpc.aio.AbortError:
            code = _code_set_by_handler(context)
            raise
        except Exception as exc:  # domain errors keep their meaning, anything else is INTERNAL
            code, message = _translate(exc, name)
            await context.abort(code, message)
        finally:
            if observe is not None:
                observe(name, code)

    return handler


def _code_set_by_handler(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


def _translate(exc: Exception, name: str) -> tuple[grpc.StatusCode, str]:
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("%s failed unexpectedly", name, exc_info=exc)
    else:
        # Expected outcomes (bad input from a client, say) are not the server's problem to log loudly.
        log.debug("%s -> %s: %s", name, code.name, message)
    return code, message
