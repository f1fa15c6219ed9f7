"""How a client finds the dispatcher's credentials: its bearer token (sent as ``authorization: Bearer``
metadata) and the CA its TLS certificate is signed by. The server's check is ``dispatcher/server.py``."""

from __future__ import annotations

import os

from anesbench.serving.security import ClientTls, client_tls, read_token, token_metadata

TOKEN_ENV = "ANESBENCH_DISPATCHER_TOKEN"
TOKEN_FILE_ENV = "ANESBENCH_DISPATCHER_TOKEN_FILE"
CA_ENV = "ANESBENCH_DISPATCHER_CA"


def client_metadata(token_file: str | None = None) -> tuple[tuple[str, str], ...]:
    """The call metadata with the token of ``token_file``, else $ANESBENCH_DISPATCHER_TOKEN, else the file in
    $ANESBENCH_DISPATCHER_TOKEN_FILE (none without one)."""
    if token_file:
        return token_metadata(read_token(token_file, "dispatcher_token_file"))
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return token_metadata(os.environ.get(TOKEN_ENV, "").strip() or (read_token(path, TOKEN_FILE_ENV) if path else None))


def dispatcher_tls(ca: str | None = None) -> ClientTls | None:
    """TLS to the dispatcher when ``ca`` (else $ANESBENCH_DISPATCHER_CA) names its CA; None: plain text."""
    return client_tls(ca or os.environ.get(CA_ENV, "").strip() or None, prefix="dispatcher")
