"""API keys come from the environment or a file, never from the command line, and are never stored.

A key is checked before it is used: one holding a line break or another control character (a key
file with two lines, a variable set from a pasted string) would otherwise end the header block and
inject headers of its own, so it is refused as bad input naming where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from anesbench.errors import InvalidInput

KEY_ENV_VARS = ("ANESBENCH_API_KEY", "OPENAI_API_KEY")
KEY_FILE_ENV_VAR = "ANESBENCH_API_KEY_FILE"


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
    for url in endpoints:
        if api_key and urlsplit(url).username is not None:
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
    for url in endpoints:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
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
