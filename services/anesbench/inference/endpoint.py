"""Endpoint URLs (validation, credential stripping, the allow-list the dispatcher enforces) and their API keys.

API keys come from the environment or a file, never from the command line, and are never stored. A key
is checked before it is used: one holding a line break or another control character (a key file with
two lines, a variable set from a pasted string) would otherwise end the header block and inject headers
of its own, so it is refused as bad input naming where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from anesbench.errors import InvalidInput, PermissionDenied
from anesbench.inference.transport import is_loopback_host

KEY_ENV_VARS = ("ANESBENCH_API_KEY", "OPENAI_API_KEY")
KEY_FILE_ENV_VAR = "ANESBENCH_API_KEY_FILE"


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
    """The server's root: the base URL without a trailing ``/v1`` (where ``/health`` lives)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/").removesuffix("/v1"), "", ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return not host.endswith(".localhost") and is_loopback_host(host)  # the allow-list takes no *.localhost


def _origin(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) with the scheme's default port filled in; ValueError on a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def matches_prefix(url: str, prefix: str) -> bool:
    """Whether ``url`` lies under the allowed ``prefix``: the same scheme, host and port exactly, and a
    path equal to the prefix's path or below it (``/v1`` admits ``/v1/chat`` but not ``/v10``)."""
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


def load_api_key(key_file: str | None = None) -> str | None:
    """The key from ``key_file``, else $ANESBENCH_API_KEY_FILE, else $ANESBENCH_API_KEY / $OPENAI_API_KEY."""
    path = key_file or os.environ.get(KEY_FILE_ENV_VAR)
    if path:
        return _read_key(path, "api_key_file" if key_file else KEY_FILE_ENV_VAR)
    for name in KEY_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return _checked(value, name, "the key")
    return None


def _read_key(path: str, field: str, prefix: str = "") -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"{prefix}cannot read {path}: {exc.strerror}", field=field) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{prefix}{path} is not UTF-8 text", field=field) from None
    if not key:
        raise InvalidInput(f"{prefix}{path} is empty", field=field)
    return _checked(key, field, f"the key in {path}")


def _checked(key: str, field: str, what: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidInput(f"{what} contains a line break or control character (a key is one line)", field=field)
    if not key.isascii():
        raise InvalidInput(f"{what} contains non-ASCII characters", field=field)
    return key


def check_url_credentials(endpoints: Sequence[str], api_key: str | None) -> None:
    """Credentials in an endpoint URL are sent as Basic auth; with an API key as well, refuse (which one?)."""
    if api_key and any(urlsplit(url).username is not None for url in endpoints):
        raise InvalidInput("the URL holds credentials (sent as Basic auth) and an API key is set as well; "
                           "give only one of them", field="endpoints")


def refuse_url_credentials(endpoints: Sequence[str]) -> None:
    """A server keeps what a run names: credentials in a URL would be stored, so it refuses them.

    >>> try:
    ...     refuse_url_credentials(["https://user:secret@host/v1"])
    ... except InvalidInput as exc:
    ...     print(exc.field, exc.message[:19])
    endpoints holds user:password
    """
    if any(urlsplit(url).username is not None for url in endpoints):  # a password comes with a (maybe empty) user
        raise InvalidInput("holds user:password, which a server would store with the run; give the server the "
                           "key instead (its {endpoint_key_file}) and drop it from the URL", field="endpoints",
                           mentions=("endpoint_key_file",))


def load_endpoint_keys(specs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``PREFIX=FILE`` pairs (``--endpoint-key-file``): the key in FILE goes only to endpoints under PREFIX."""
    keys: list[tuple[str, str]] = []
    for spec in specs:
        prefix, sep, path = spec.partition("=")
        if not sep or not prefix.strip() or not path.strip():
            raise InvalidInput(f"expected URL_PREFIX=FILE, got {spec!r}", field="endpoint_key_file")
        keys.append((prefix.strip().rstrip("/"), _read_key(path.strip(), "endpoint_key_file", f"{prefix}: ")))
    return tuple(keys)
