"""TLS for our gRPC servers and their clients: PEM files named on a command line become credentials.

A server given a client CA asks every peer for a certificate signed by it (mutual TLS). A client given
no CA trusts the system's roots; given a certificate and key it presents them (for a mutual-TLS server).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from anesbench.errors import InvalidInput

PEM_MARK = b"-----BEGIN "


def read_pem(path: str, field: str) -> bytes:
    """The PEM text in ``path``; bad input about ``field`` (the setting that named it) when unreadable or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None
    if PEM_MARK not in data:
        raise InvalidInput(f"{path} holds no PEM block", field=field)
    return data


@dataclass(frozen=True)
class ServerTls:
    cert: bytes
    key: bytes
    client_ca: bytes | None = None  # set: mutual TLS, peers must present a certificate it signed

    @classmethod
    def load(cls, cert: str, key: str, client_ca: str | None = None) -> ServerTls:
        return cls(read_pem(cert, "tls_cert"), read_pem(key, "tls_key"),
                   read_pem(client_ca, "tls_client_ca") if client_ca else None)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.client_ca,
                                           require_client_auth=self.client_ca is not None)


@dataclass(frozen=True)
class ClientTls:
    ca: bytes | None = None  # None: the system's trusted roots
    cert: bytes | None = None  # with ``key``: this client's certificate, for mutual TLS
    key: bytes | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def server_tls(cert: str | None, key: str | None, client_ca: str | None) -> ServerTls | None:
    """A server's TLS from its certificate, key and (for mutual TLS) client CA files; None: plain text."""
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidInput("needs {tls_cert} and {tls_key} (mutual TLS is TLS first)", field="tls_client_ca",
                               mentions=("tls_cert", "tls_key"))
        return None
    if cert is None or key is None:
        raise InvalidInput("{tls_cert} and {tls_key} go together", field="tls_key" if key is None else "tls_cert",
                           mentions=("tls_cert", "tls_key"))
    return ServerTls.load(cert, key, client_ca)


def client_tls(ca: str | None, cert: str | None = None, key: str | None = None, *, prefix: str) -> ClientTls | None:
    """A client's TLS from a CA file and, for mutual TLS, a certificate and key; None: plain text.

    ``prefix`` names the settings in messages (``grader`` -> ``grader_ca``, ``grader_cert``, ``grader_key``).
    """
    if (cert is None) != (key is None):
        raise InvalidInput("a client certificate needs its key and the other way round",
                           field=f"{prefix}_key" if key is None else f"{prefix}_cert")
    if ca is None and cert is None:
        return None
    return ClientTls(read_pem(ca, f"{prefix}_ca") if ca else None,
                     read_pem(cert, f"{prefix}_cert") if cert else None,
                     read_pem(key, f"{prefix}_key") if key else None)


def open_channel(target: str, options: tuple[tuple[str, int], ...], tls: ClientTls | None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)
