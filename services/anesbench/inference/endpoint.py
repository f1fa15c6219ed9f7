"""Endpoint URLs: validation, credential stripping, and the allow-list the dispatcher enforces."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from anesbench.errors import InvalidInput, PermissionDenied


def validate_endpoint(url: str) -> str:
    """Return the base URL without a trailing slash; raise InvalidInput if it is not http(s).

    >>> validate_endpoint("http://127.0.0.1:30000/v1/")
    'http://127.0.0.1:30000/v1'
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"expected an http(s) base URL such as http://127.0.0.1:30000/v1, got {url!r}", field="endpoints")
    if parts.query or parts.fragment:
        raise InvalidInput(f"a base URL takes no query or fragment: {url!r}", field="endpoints")
    try:
        port = parts.port
    except ValueError:  # not a number, or outside 0-65535
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput(f"the port must be a number from 1 to 65535: {public_endpoint(url)!r}", field="endpoints")
    return url.strip().rstrip("/")


def public_endpoint(url: str) -> str:
    """The URL with any user:password removed, safe to store and log."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]  # host[:port] as written, even when the port is malformed
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def server_root(base_url: str) -> str:
    """The server's root: the base URL without a trailing ``/v1`` (where ``/health`` lives).

    >>> server_root("http://h/openai/v1/")
    'http://h/openai'
    """
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/").removesuffix("/v1"), "", ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) with the scheme's default port filled in; ValueError on a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def matches_prefix(url: str, prefix: str) -> bool:
    """Whether ``url`` lies under the allowed ``prefix``: the same scheme, host and port exactly, and a
    path equal to the prefix's path or below it (``/v1`` admits ``/v1/chat`` but not ``/v10``).

    >>> matches_prefix("https://api.x.com/v1", "https://api.x.com"), matches_prefix("https://api.x.com.evil.net/v1", "https://api.x.com")
    (True, False)
    """
    try:
        scheme, host, port, path = _origin(url)
        p_scheme, p_host, p_port, p_path = _origin(prefix)
    except ValueError:
        return False
    if (scheme, host, port) != (p_scheme, p_host, p_port) or not host:
        return False
    return path == p_path or path.startswith(p_path + "/")


def check_allowed(url: str, allowed_prefixes: Sequence[str]) -> None:
    """Refuse endpoints outside the allowed prefixes (loopback only when none are configured)."""
    if allowed_prefixes:
        if any(matches_prefix(url, prefix) for prefix in allowed_prefixes):
            return
        raise PermissionDenied(f"endpoint {public_endpoint(url)} does not match any allowed endpoint prefix")
    if not is_loopback(url):
        raise PermissionDenied(
            f"endpoint {public_endpoint(url)} is not a loopback address and no {{allow_endpoint}} prefix is configured",
            mentions=("allow_endpoint",))
