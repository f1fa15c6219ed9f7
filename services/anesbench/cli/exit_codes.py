"""The one place where our exceptions become exit codes (docs/architecture.md: 0 ok, 2 bad input, 1 other)."""

from __future__ import annotations

from anesbench.errors import AnesbenchError, InvalidInput, NotFound, PermissionDenied

OK, FAILURE, BAD_INPUT = 0, 1, 2


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, (InvalidInput, NotFound, PermissionDenied)):
        return BAD_INPUT
    if isinstance(error, AnesbenchError):
        return FAILURE
    return FAILURE
