"""Small asyncio servers for HTTP client tests, all on 127.0.0.1 ports they pick.

* :func:`private_ca` — a CA and a server certificate (for ``model.test`` and 127.0.0.1) made with
  ``cryptography`` in the test, never checked in.
* :class:`ChatServer` — an OpenAI-style ``/v1/chat/completions`` server (HTTP/1.1 keep-alive, or TLS),
  answering "The answer is A."; it records every request head and counts connections and TLS handshakes.
* :class:`ForwardProxy` — a plain HTTP proxy: records every request line it sees and forwards it.
* :class:`ConnectProxy` — an HTTPS proxy: records every CONNECT and pipes the tunnel.

Both proxies resolve the reserved name ``model.test`` to 127.0.0.1 themselves (``hosts``), so a test
can prove the client let the proxy resolve the name instead of trying DNS itself.
"""

from __future__ import annotations

import abc
import asyncio
import datetime
import ipaddress
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import eventually

TEST_HOST = "model.test"  # RFC 6761: never resolves


@dataclass
class PrivateCA:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def private_ca(directory: Path) -> PrivateCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anesbench test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_HOST)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(TEST_HOST),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    found = PrivateCA(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    found.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return found


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One request or response head and its Content-Length body: (first line, lower-case headers, body)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    first, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return first, headers, body


REPLY = json.dumps({"choices": [{"message": {"content": "The answer is A."}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4}}).encode()


@dataclass
class ChatServer:
    """``/v1/chat/completions`` answering REPLY; ``idle_close`` closes a connection idle that long."""

    tls: ssl.SSLContext | None = None
    idle_close: float | None = None
    latency: float = 0.0  # seconds before each answer
    models: tuple[str, ...] = ("m",)  # what GET /v1/models lists (the harness's preflight checks --model)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections the server has closed (idle_close, a client that went away)
    handshakes_failed: int = 0
    port: int = 0
    _handshaking: int = 0
    _server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> ChatServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)  # TLS per connection, counted
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every accepted connection's TLS handshake has succeeded or failed."""
        await eventually(lambda: not self._handshaking, "every TLS handshake to end", timeout=timeout, interval=0.01)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.tls is not None:
            self._handshaking += 1
            try:
                await writer.start_tls(self.tls)
            except (ssl.SSLError, ConnectionError, OSError):
                self.handshakes_failed += 1
                writer.close()
                return
            finally:
                self._handshaking -= 1
        try:
            while True:
                if self.idle_close is not None:
                    first, headers, _ = await asyncio.wait_for(read_head(reader), self.idle_close)
                else:
                    first, headers, _ = await read_head(reader)
                self.requests.append((first, headers))
                path = first.split(" ")[1]
                if self.latency:
                    await asyncio.sleep(self.latency)
                if path.endswith("/chat/completions"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)
                elif path.endswith("/models"):
                    listing = json.dumps({"object": "list", "data": [{"id": name} for name in self.models]}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(listing)).encode() + b"\r\n\r\n" + listing)
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self.closed += 1


@dataclass
class _Proxy(abc.ABC):
    hosts: dict[str, int]  # name -> port on 127.0.0.1 (the proxy's own "DNS")
    seen: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> _Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def _upstream(self, authority: str) -> tuple[str, int]:
        host, _, port = authority.partition(":")
        return "127.0.0.1", self.hosts.get(host, int(port or 80))

    @abc.abstractmethod
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection (each proxy kind its own way)."""


class ForwardProxy(_Proxy):
    """Forwards each ``METHOD http://host:port/path`` request (keep-alive on both sides) and records it."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                first, headers, body = await read_head(reader)
                self.seen.append(first)
                method, target, version = first.split(" ")
                if not target.startswith("http://"):
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    continue
                authority, _, path = target[len("http://"):].partition("/")
                if upstream is None:
                    upstream = await asyncio.open_connection(*self._upstream(authority))
                up_reader, up_writer = upstream
                forwarded = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "proxy-authorization")
                up_writer.write(f"{method} /{path} {version}\r\n{forwarded}\r\n".encode("latin-1") + body)
                status, answer_headers, answer = await read_head(up_reader)
                lines = "".join(f"{k}: {v}\r\n" for k, v in answer_headers.items())
                writer.write(f"{status}\r\n{lines}\r\n".encode("latin-1") + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            if upstream is not None:
                upstream[1].close()


class ConnectProxy(_Proxy):
    """Answers ``CONNECT host:port`` by piping bytes to the upstream; records every request line."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first, _, _ = await read_head(reader)
            self.seen.append(first)
            method, authority, _ = first.split(" ")
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(*self._upstream(authority))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
