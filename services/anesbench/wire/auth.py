"""How a client finds the dispatcher's credentials: its bearer token and the CA its TLS certificate is signed by.

A client reads the token from ``$ANESBENCH_DISPATCHER_TOKEN``, else from the file named by
``$ANESBENCH_DISPATCHER_TOKEN_FILE`` (``--dispatcher-token-file``), and sends it as
``authorization: Bearer <token>`` metadata. With ``$ANESBENCH_DISPATCHER_CA`` (``--dispatcher-ca``) it
speaks TLS and trusts that CA; the server's check is ``dispatcher/server.py``.
"""

from __future__ import annotations

import os

from anesbench.serving.security import ClientTls, client_tls, read_token, token_metadata

TOKEN_ENV = "ANESBENCH_DISPATCHER_TOKEN"
TOKEN_FILE_ENV = "ANESBENCH_DISPATCHER_TOKEN_FILE"
CA_ENV = "ANESBENCH_DISPATCHER_CA"


def client_token() -> str | None:
    """The token a client sends: $ANESBENCH_DISPATCHER_TOKEN, else the file in $ANESBENCH_DISPATCHER_TOKEN_FILE."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return read_token(path, TOKEN_FILE_ENV) if path else None


def client_metadata() -> tuple[tuple[str, str], ...]:
    return token_metadata(client_token())


def dispatcher_tls() -> ClientTls | None:
    """TLS to the dispatcher when $ANESBENCH_DISPATCHER_CA names its CA; None: plain text."""
    return client_tls(os.environ.get(CA_ENV, "").strip() or None, prefix="dispatcher")
