"""The command line's edge of the error model: exit codes and messages from ``anesbench.errors``.

Each exception declares its exit code (docs/architecture.md: 0 ok, 2 bad input, 1 anything else); a field named in an error,
and each setting its message mentions, is shown as the option that sets it (``field="concurrency"`` -> ``--concurrency``)::

    >>> from anesbench.errors import InvalidInput
    >>> message_for(InvalidInput("a.csv already exists; pass {force} to replace it", field="out", mentions=["force"]))
    '--out: a.csv already exists; pass --force to replace it'
    >>> option_for("run_ids"), option_for("SSL_CERT_FILE")
    ('--run', '$SSL_CERT_FILE')
"""

from __future__ import annotations

from anesbench.errors import EXIT_FAILURE, AnesbenchError

# RunConfig fields whose option is not simply the field name with dashes.
_OPTION_FOR_FIELD = {"endpoints": "endpoint", "run_ids": "run", "dataset_name": "dataset", "older_than_days": "older_than"}


def option_for(field: str) -> str:
    """``request_timeout`` -> ``--request-timeout``; ``SSL_CERT_FILE`` (a variable) -> ``$SSL_CERT_FILE``."""
    if field.isupper():
        return f"${field}"
    if "." in field or field.startswith("-"):
        return field
    return "--" + _OPTION_FOR_FIELD.get(field, field).replace("_", "-")


def exit_code_for(error: BaseException) -> int:
    return error.exit_code if isinstance(error, AnesbenchError) else EXIT_FAILURE


def message_for(error: AnesbenchError) -> str:
    return error.render(option_for)
