"""The dispatcher's bearer token as a client finds and sends it (the server's check is ``dispatcher/auth.py``).

A client reads the token from ``$ANESBENCH_DISPATCHER_TOKEN``, else from the file named by
``$ANESBENCH_DISPATCHER_TOKEN_FILE``, and sends it as ``authorization: Bearer <token>`` metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from anesbench.errors import InvalidInput

TOKEN_ENV = "ANESBENCH_DISPATCHER_TOKEN"
TOKEN_FILE_ENV = "ANESBENCH_DISPATCHER_TOKEN_FILE"
AUTHORIZATION = "authorization"


def read_token(path: str, field: str) -> str:
    """The token in the file at ``path``; bad input about ``field`` (the setting that named the file) otherwise."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None
    if not token:
        raise InvalidInput(f"{path} is empty", field=field)
    return token


def bearer(token: str) -> str:
    """The metadata value that carries ``token``.

    >>> bearer("t0ken")
    'Bearer t0ken'
    """
    return f"Bearer {token}"


def client_token() -> str | None:
    """The token a client sends: $ANESBENCH_DISPATCHER_TOKEN, else the file in $ANESBENCH_DISPATCHER_TOKEN_FILE."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return read_token(path, TOKEN_FILE_ENV) if path else None


def client_metadata() -> tuple[tuple[str, str], ...]:
    token = client_token()
    return ((AUTHORIZATION, bearer(token)),) if token else ()
