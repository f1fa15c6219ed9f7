"""How the HTTP client reaches a server: TLS trust, proxies from the environment, timeouts.

* **TLS trust**: ``--ca-bundle FILE``, else ``$SSL_CERT_FILE``, else the system's CAs. A bundle
  replaces the system CAs (as ``curl --cacert`` does). An untrusted certificate is fatal: every
  request would fail the same way, so it is reported once and never retried.
* **Proxies**: ``HTTP_PROXY`` for ``http://`` endpoints (the request goes to the proxy with the full
  URL), ``HTTPS_PROXY`` for ``https://`` endpoints (a ``CONNECT`` tunnel, TLS end to end with the
  server), either in upper or lower case; ``NO_PROXY`` lists host names or domain suffixes that go
  direct (``*`` for all). Loopback addresses always go direct: a proxy cannot reach our loopback.
  Credentials in the proxy URL are sent as ``Proxy-Authorization: Basic``.
* **Timeouts**: ``connect_timeout`` bounds the TCP connect, the proxy tunnel and the TLS handshake,
  separately from the request's deadline; idle keep-alive connections are dropped after
  ``idle_timeout`` seconds (or sooner, when the server's ``Keep-Alive: timeout=N`` says so).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from anesbench.errors import InvalidInput

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 4.0  # below the 5 s keep-alive of uvicorn (SGLang, vLLM) and Node servers


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Transport settings shared by every connection to the model servers of one run."""

    ca_bundle: str | None = None  # PEM file of trusted CAs; None: $SSL_CERT_FILE or the system's
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    proxies_from_env: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for https endpoints; InvalidInput if the CA bundle is missing or not PEM."""
        cafile = self.ca_bundle or os.environ.get("SSL_CERT_FILE") or None
        return _context(cafile, "ca_bundle" if self.ca_bundle else "SSL_CERT_FILE")

    def check(self) -> None:
        """Validate what can be checked before a run starts (the CA bundle, the proxy URLs)."""
        self.ssl_context()
        if self.proxies_from_env:
            for scheme in ("http", "https"):
                url = urllib.request.getproxies_environment().get(scheme)
                if url:
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
        auth = None
        if parts.username is not None:
            auth = basic_auth(unquote(parts.username), unquote(parts.password or ""))
        return cls(parts.hostname, port, auth, env)


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization: Basic`` value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_for(scheme: str, host: str, port: int, options: HttpOptions) -> Proxy | None:
    """The proxy to use for a server, from the environment, or None to connect directly."""
    if not options.proxies_from_env or is_loopback_host(host):
        return None
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme)
    if not url:
        return None
    if urllib.request.proxy_bypass_environment(f"{host}:{port}", proxies):  # type: ignore[attr-defined]
        return None
    return Proxy.parse(url, scheme)
