"""The HTTP client of the hot path: one aiohttp session per origin, at most ``size`` requests in flight.

aiohttp does the HTTP/1.1 (keep-alive, Content-Length, chunked and close-delimited bodies, gzip),
TLS with a chosen CA bundle and proxy ``CONNECT`` tunnels; :mod:`anesbench.inference.transport`
decides the trust, the proxy (``NO_PROXY``, loopback direct) and the timeouts. Credentials in the
URL are sent as ``Authorization: Basic``. No cookies, redirects or environment lookups per request.

Failures are :class:`anesbench.errors.HttpError` subclasses; those with ``fatal = True`` (an untrusted
certificate, a name that does not resolve, a proxy refusing our credentials) will fail every request
the same way and must not be retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from anesbench.errors import (
    CertificateError,
    ConnectError,
    ConnectTimeout,
    HttpError,
    InvalidInput,
    NameResolutionError,
    ProxyAuthenticationRequired,
    ProxyError,
    ReadError,
    RemoteProtocolError,
)
from anesbench.inference.transport import HttpOptions, Proxy, basic_auth, proxy_for

HttpConnectionError = HttpError  # the base of every transport failure raised here


@dataclass(slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive names
    body: bytes


def check_header_value(name: str, value: str) -> None:
    """Refuse a value that would break the header block (CR, LF, NUL or other control characters)."""
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise InvalidInput(f"the {name} header value contains a line break or control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidInput(f"the {name} header value has characters outside ISO-8859-1") from None


async def _reused(_: object, context: SimpleNamespace, __: object) -> None:
    context.trace_request_ctx.reused = True


_TRACE = aiohttp.TraceConfig()
_TRACE.on_connection_reuseconn.append(_reused)
_TRACE.freeze()


class HttpPool:
    """Keep-alive connections to one origin, at most ``size`` open; ``request`` is safe to call concurrently."""

    def __init__(self, base_url: str, *, size: int = 64, timeout: float = 600.0,
                 headers: dict[str, str] | None = None, options: HttpOptions | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.options = options or HttpOptions()
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self._ssl = self.options.ssl_context() if parts.scheme == "https" else True
        authority = f"[{self.host}]" if ":" in self.host else self.host
        self._origin = f"{parts.scheme}://{authority}" + ("" if parts.port is None else f":{parts.port}")
        self._prefix = parts.path.rstrip("/")
        headers = dict(headers or {})
        if parts.username is not None:
            if any(name.lower() == "authorization" for name in headers):
                raise InvalidInput("credentials in the URL and an API key: give only one of them", field="endpoints")
            headers["Authorization"] = basic_auth(unquote(parts.username), unquote(parts.password or ""))
        self.proxy: Proxy | None = proxy_for(parts.scheme, self.host, self.port, self.options)
        self._proxy_url = None if self.proxy is None else URL.build(scheme="http", host=self.proxy.host,
                                                                     port=self.proxy.port)
        self._proxy_headers = None
        if self.proxy is not None and self.proxy.authorization:
            if parts.scheme == "http":  # forwarding: the proxy reads it from the request itself
                headers["Proxy-Authorization"] = self.proxy.authorization
            else:
                self._proxy_headers = {"Proxy-Authorization": self.proxy.authorization}
        for name, value in headers.items():
            check_header_value(name, value)
        self._headers = headers
        self._size = size
        self._slots = asyncio.Semaphore(size)
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._size, ssl=self._ssl, keepalive_timeout=self.options.idle_timeout)
        # the connect timeout covers TCP, the proxy tunnel and TLS; our own slots mean it never waits for the pool
        return aiohttp.ClientSession(connector=connector, headers=self._headers, trace_configs=[_TRACE],
                                     timeout=aiohttp.ClientTimeout(total=None, connect=self.options.connect_timeout),
                                     skip_auto_headers=("User-Agent", "Accept-Encoding"), auto_decompress=True,
                                     cookie_jar=aiohttp.DummyCookieJar())

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(f"{self._origin}{self._prefix}{path}")
        return url

    async def request(self, method: str, path: str, body: bytes = b"") -> Response:
        """Send one request within ``timeout`` seconds (raises TimeoutError or an HttpError)."""
        if self._session is None:
            self._session = self._open_session()
        async with self._slots, asyncio.timeout(self.timeout):
            trace = SimpleNamespace(reused=False, answered=False)
            try:
                return await self._exchange(method, self._url(path), body, trace)
            except ReadError:
                if not trace.reused or trace.answered:
                    raise
                # The server closed an idle connection as we sent on it (no byte came back):
                # send it once more, on a new connection.
                return await self._exchange(method, self._url(path), body, SimpleNamespace(reused=False, answered=False))

    async def _exchange(self, method: str, url: URL, body: bytes, trace: SimpleNamespace) -> Response:
        assert self._session is not None
        extra: dict[str, Any] = {"data": body, "headers": {"Content-Type": "application/json"}} if body else {}
        try:
            async with self._session.request(method, url, proxy=self._proxy_url, proxy_headers=self._proxy_headers,
                                             allow_redirects=False, trace_request_ctx=trace, **extra) as response:
                trace.answered = True
                hint = response.headers.get("Keep-Alive")
                if hint:
                    self._expire_sooner(hint)
                lost = None
                connection = response.connection
                if connection is not None and connection.protocol is not None and "Content-Length" not in response.headers \
                        and response.headers.get("Transfer-Encoding") != "chunked":
                    # aiohttp ends a close-delimited body at a reset as at an orderly close: tell them apart
                    lost = connection.protocol.closed
                body = await response.read()
                if lost is not None and lost.done() and lost.exception() is not None:
                    raise ReadError(f"connection broke in the middle of the response body ({lost.exception()})")
                return Response(response.status, response.headers, body)
        except aiohttp.ClientError as exc:
            raise self._error(exc, trace.answered) from None

    def _expire_sooner(self, hint: str) -> None:
        """Drop idle connections before the server's ``Keep-Alive: timeout=N`` would close them under us."""
        for part in hint.split(","):
            key, _, number = part.strip().partition("=")
            if key.lower() == "timeout" and number.strip().isdigit():
                seconds = float(number)
                limit = min(self.options.idle_timeout, max(seconds - 1.0, seconds / 2))
                assert self._session is not None
                # aiohttp has no public setter; one origin per pool, so the server's hint holds for the pool
                self._session.connector._keepalive_timeout = limit

    def _error(self, exc: aiohttp.ClientError, answered: bool) -> HttpError:
        where = f"{self.host}:{self.port}"
        if self.proxy is not None:
            where += f" through the proxy {self.proxy.host}:{self.proxy.port} (${self.proxy.env})"
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            host = self.proxy.host if self.proxy is not None else self.host
            reason = exc.os_error.strerror or exc.os_error
            return NameResolutionError(f"cannot resolve the host name {host!r}: {reason}")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            verify = getattr(exc.certificate_error, "verify_message", exc.certificate_error)
            return CertificateError(
                f"TLS certificate of {self.host}:{self.port} is not trusted ({verify}); for a private "
                "CA pass {ca_bundle} FILE (or set SSL_CERT_FILE)", mentions=("ca_bundle",))
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            reason = getattr(exc.os_error, "reason", None) or exc.os_error
            return CertificateError(f"TLS with {self.host}:{self.port} failed: {reason}")
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            assert self.proxy is not None
            line = f"HTTP/1.1 {exc.status} {exc.message}"
            if exc.status == 407:
                return ProxyAuthenticationRequired(
                    f"the proxy {self.proxy.host}:{self.proxy.port} (${self.proxy.env}) wants credentials: {line}")
            target = f"{self.host}:{self.port}"
            return ProxyError(f"the proxy {self.proxy.host}:{self.proxy.port} refused CONNECT {target}: {line}")
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ConnectTimeout(f"cannot connect to {where}: no connection within "
                                  f"{self.options.connect_timeout:g} s")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ConnectError(f"cannot connect to {where}: {exc.os_error.strerror or exc.os_error}")
        if isinstance(exc, aiohttp.ClientResponseError):
            return RemoteProtocolError(f"malformed HTTP response: {exc.message}")
        if answered:
            return ReadError(f"connection broke in the middle of the response body ({exc})")
        return ReadError(f"connection closed before the response ended ({exc})")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
