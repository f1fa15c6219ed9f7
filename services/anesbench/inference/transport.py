"""A lean HTTP/1.1 client for the hot path: a sized keep-alive connection pool on asyncio Protocols.

Why not aiohttp: on the saturation job (``bench/http_job.py``, docs/performance.md) it cost the
harness more CPU per request and missed the efficiency goals embedded and through the services, which
this client meets; httpx costs more still (``bench/http_clients.py``). It speaks what OpenAI-compatible servers and
hosted APIs need: POST/GET with a body of known length, keep-alive with idle expiry, responses
framed by Content-Length, chunked encoding or connection close (parsed by ``httptools``, the parser
uvicorn uses). Credentials in the URL are sent as ``Authorization: Basic``. No cookies, redirects or
compression negotiation.

* **TLS trust**: ``--ca-bundle FILE``, else ``$SSL_CERT_FILE``, else the system's CAs. A bundle
  replaces the system CAs (as ``curl --cacert`` does).
* **Proxies**: ``HTTP_PROXY`` for ``http://`` endpoints (the request goes to the proxy with the full
  URL), ``HTTPS_PROXY`` for ``https://`` endpoints (a ``CONNECT`` tunnel, TLS end to end with the
  server), either in upper or lower case; ``NO_PROXY`` lists host names or domain suffixes that go
  direct (``*`` for all). Loopback addresses always go direct: a proxy cannot reach our loopback.
  Credentials in the proxy URL are sent as ``Proxy-Authorization: Basic``.
* **Timeouts**: ``connect_timeout`` bounds the TCP connect, the proxy tunnel and the TLS handshake,
  separately from the request's deadline; idle keep-alive connections are dropped after
  ``IDLE_TIMEOUT`` seconds (or sooner, when the server's ``Keep-Alive: timeout=N`` says so).

Failures are :class:`anesbench.errors.HttpError` subclasses; those with ``fatal = True`` (an untrusted
certificate, a name that does not resolve, a proxy refusing our credentials) will fail every request
the same way: they are reported once and never retried.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import os
import socket
import ssl
import time
import urllib.request
import zlib
from collections import deque
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

import httptools

from anesbench.errors import (
    CertificateError,
    ConnectError,
    ConnectTimeout,
    InvalidInput,
    NameResolutionError,
    ProxyAuthenticationRequired,
    ProxyError,
    ReadError,
    RemoteProtocolError,
)

IDLE_TIMEOUT = 4.0  # seconds; below the 5 s keep-alive of uvicorn (SGLang, vLLM) and Node servers
MAX_TUNNEL_RESPONSE = 64 << 10
STALE_AFTER = 0.5  # seconds idle after which a connection may have been closed by the server as we send


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Transport settings shared by every connection to the model servers of one run."""

    ca_bundle: str | None = None  # PEM file of trusted CAs; None: $SSL_CERT_FILE or the system's
    connect_timeout: float = 10.0
    proxies_from_env: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for https endpoints; InvalidInput if the CA bundle is missing or not PEM."""
        cafile = self.ca_bundle or os.environ.get("SSL_CERT_FILE") or None
        return _context(cafile, "ca_bundle" if self.ca_bundle else "SSL_CERT_FILE")

    def check(self) -> None:
        """Validate what can be checked before a run starts (the CA bundle, the proxy URLs)."""
        self.ssl_context()
        for scheme in ("http", "https"):
            url = urllib.request.getproxies_environment().get(scheme)
            if url and self.proxies_from_env:
                Proxy.parse(url, scheme)


@functools.lru_cache(maxsize=8)
def _context(cafile: str | None, field: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {cafile}", field=field) from None
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"{cafile} is not a PEM file of CA certificates: {exc}", field=field) from None


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization header value, from user:password in the URL
    env: str  # the variable it came from, for messages

    @classmethod
    def parse(cls, url: str, scheme: str) -> Proxy:
        env = f"{scheme.upper()}_PROXY"
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or 80
        except ValueError:
            raise InvalidInput(f"{url!r} has an invalid port", field=env) from None
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidInput(f"expected an http:// proxy URL such as http://proxy:3128, got {url!r}", field=env)
        return cls(parts.hostname, port, basic_auth(parts) if parts.username is not None else None, env)


def basic_auth(parts: SplitResult) -> str:
    """The ``Authorization: Basic`` value of the URL's user:password (RFC 7617, UTF-8)."""
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


def is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def proxy_for(scheme: str, host: str, port: int, options: HttpOptions) -> Proxy | None:
    """The proxy to use for a server, from the environment, or None to connect directly."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme)
    if not url or not options.proxies_from_env or is_loopback_host(host) or \
            urllib.request.proxy_bypass_environment(f"{host}:{port}", proxies):  # type: ignore[attr-defined]
        return None
    return Proxy.parse(url, scheme)


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; the last value wins
    body: bytes


def check_header_value(name: str, value: str) -> str:
    """Refuse a value that would break the header block (CR, LF, NUL or other control characters)."""
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise InvalidInput(f"the {name} header value contains a line break or control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidInput(f"the {name} header value has characters outside ISO-8859-1") from None
    return value


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.keep_alive: float | None = None  # the server's Keep-Alive: timeout=N
        self.received = 0  # bytes of the current response
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0  # set once the headers are complete

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            close_delimited = self._status and "content-length" not in self._headers \
                and self._headers.get("transfer-encoding", "").lower() != "chunked"
            if close_delimited and exc is None:
                self.on_message_complete()  # a body delimited by the connection's orderly end
            elif close_delimited:
                self._fail(ReadError(f"connection broke in the middle of the response body ({exc})"))
            else:
                self._fail(ReadError(f"connection closed before the response ended ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        for part in self._headers.get("keep-alive", "").split(","):  # the server's idle timeout
            key, _, number = part.strip().partition("=")
            if key.lower() == "timeout" and number.strip().isdigit():
                self.keep_alive = float(number)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._body)
        if self._headers.get("content-encoding", "").lower() in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, zlib.MAX_WBITS | 32)
            except zlib.error as exc:
                self._fail(RemoteProtocolError(f"bad {self._headers['content-encoding']} body: {exc}"))
                self.close()
                return
        if not self._parser.should_keep_alive():
            self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Response(self._status, self._headers, body))

    # use
    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    async def exchange(self, request: bytes) -> Response:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._status, self.received = {}, [], 0, 0
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """Keep-alive connections to one origin, at most ``size`` open; ``request`` is safe to call concurrently.

    An ``api_key`` goes in ``Authorization: Bearer`` (OpenAI style)."""

    def __init__(self, base_url: str, *, size: int = 64, timeout: float = 600.0, api_key: str | None = None,
                 options: HttpOptions | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.options = options or HttpOptions()
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self._ssl = self.options.ssl_context() if parts.scheme == "https" else None
        authority = self.host if ":" not in self.host else f"[{self.host}]"
        if parts.port is not None:
            authority += f":{parts.port}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if parts.username is not None:
            if api_key:
                raise InvalidInput("credentials in the URL and an API key: give only one of them", field="endpoints")
            headers["Authorization"] = basic_auth(parts)
        self.proxy = proxy_for(self.scheme, self.host, self.port, self.options)
        self._target = parts.path.rstrip("/")
        if self.proxy is not None and self.scheme == "http":  # forwarding: the full URL in the request line
            self._target = f"http://{authority}{self._target}"
            if self.proxy.authorization:
                headers["Proxy-Authorization"] = self.proxy.authorization
        extra = "".join(f"{name}: {check_header_value(name, value)}\r\n" for name, value in headers.items())
        self._common = f"Host: {authority}\r\n{extra}Connection: keep-alive\r\n"
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(size)

    async def __aenter__(self) -> HttpPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connecting -------------------------------------------------------------------------
    async def _connect(self) -> _Connection:
        where = f"{self.host}:{self.port}"
        if self.proxy is not None:
            where += f" through the proxy {self.proxy.host}:{self.proxy.port} (${self.proxy.env})"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                if self.proxy is None:
                    return (await loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl))[1]
                if self.scheme == "http":
                    return (await loop.create_connection(_Connection, self.proxy.host, self.proxy.port))[1]
                return await self._tunnel(self.proxy)
        except TimeoutError:
            raise ConnectTimeout(f"cannot connect to {where}: no connection within "
                                 f"{self.options.connect_timeout:g} s") from None
        except socket.gaierror as exc:
            host = self.proxy.host if self.proxy is not None else self.host
            raise NameResolutionError(f"cannot resolve the host name {host!r}: {exc.strerror or exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise CertificateError(
                f"TLS certificate of {self.host}:{self.port} is not trusted ({exc.verify_message}); for a private "
                "CA pass {ca_bundle} FILE (or set SSL_CERT_FILE)", mentions=("ca_bundle",)) from None
        except ssl.SSLError as exc:
            raise CertificateError(f"TLS with {self.host}:{self.port} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None

    async def _tunnel(self, proxy: Proxy) -> _Connection:
        """A connection to the proxy that it has turned into a tunnel to our server (CONNECT), TLS through it."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
        last: OSError = OSError("no address")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
                break
            except OSError as exc:
                sock.close()
                last = exc
        else:
            raise last
        try:
            auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            target = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            await loop.sock_sendall(sock, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode("latin-1"))
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ProxyError(f"the proxy {proxy.host}:{proxy.port} closed the connection during CONNECT")
                reply += chunk
                if len(reply) > MAX_TUNNEL_RESPONSE:
                    raise ProxyError(f"the proxy {proxy.host}:{proxy.port} sent an oversized CONNECT reply")
            status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status_line.split(" ", 2)
            code = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            if code == 407:
                raise ProxyAuthenticationRequired(
                    f"the proxy {proxy.host}:{proxy.port} (${proxy.env}) wants credentials: {status_line}")
            if not 200 <= code < 300:
                raise ProxyError(f"the proxy {proxy.host}:{proxy.port} refused CONNECT {target}: {status_line}")
            return (await loop.create_connection(_Connection, sock=sock, ssl=self._ssl, server_hostname=self.host))[1]
        except BaseException:
            sock.close()
            raise

    # --- requests ---------------------------------------------------------------------------
    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            limit = IDLE_TIMEOUT
            if connection.keep_alive is not None:
                limit = min(limit, max(connection.keep_alive - 1.0, connection.keep_alive / 2))
            if not connection.closed and now - connection.idle_since < limit:
                return connection
            connection.close()  # expired: the server may be closing it right now
        return None

    async def request(self, method: str, path: str, body: bytes = b"") -> Response:
        """Send one request within ``timeout`` seconds (raises TimeoutError or an HttpError)."""
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        message = f"{method} {self._target}{path} HTTP/1.1\r\n{self._common}{length}\r\n".encode("latin-1") + body
        async with self._slots, asyncio.timeout(self.timeout):
            connection = self._take_idle()
            if connection is not None:
                idle = time.monotonic() - connection.idle_since
                try:
                    return await self._exchange(connection, message)
                except ReadError:
                    if connection.received or idle < STALE_AFTER:
                        raise  # a failure of this request, retried (and counted) by the caller
                    # The server closed the idle connection as we sent on it (its idle timeout and our
                    # request crossed; no byte came back): send it once more on a new connection.
            return await self._exchange(await self._connect(), message)

    async def _exchange(self, connection: _Connection, message: bytes) -> Response:
        try:
            response = await connection.exchange(message)
        except BaseException:
            connection.close()  # failed, cancelled or timed out mid-response: the connection is unusable
            raise
        if not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        return response

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
