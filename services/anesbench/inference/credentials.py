"""API keys come from the environment or a file, never from the command line, and are never stored."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from anesbench.errors import InvalidInput

KEY_ENV_VARS = ("ANESBENCH_API_KEY", "OPENAI_API_KEY")
KEY_FILE_ENV_VAR = "ANESBENCH_API_KEY_FILE"


def load_api_key(key_file: str | None = None) -> str | None:
    """The key from ``key_file``, else $ANESBENCH_API_KEY_FILE, else $ANESBENCH_API_KEY / $OPENAI_API_KEY."""
    path = key_file or os.environ.get(KEY_FILE_ENV_VAR)
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidInput(f"--api-key-file: cannot read {path}: {exc.strerror}") from None
        if not key:
            raise InvalidInput(f"--api-key-file: {path} is empty")
        return key
    for name in KEY_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def load_endpoint_keys(specs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``PREFIX=FILE`` pairs (``--endpoint-key-file``): the key in FILE goes only to endpoints under PREFIX."""
    keys: list[tuple[str, str]] = []
    for spec in specs:
        prefix, sep, path = spec.partition("=")
        if not sep or not prefix.strip() or not path.strip():
            raise InvalidInput(f"--endpoint-key-file: expected URL_PREFIX=FILE, got {spec!r}")
        try:
            key = Path(path.strip()).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidInput(f"--endpoint-key-file {prefix}: cannot read {path}: {exc.strerror}") from None
        if not key:
            raise InvalidInput(f"--endpoint-key-file {prefix}: {path} is empty")
        keys.append((prefix.strip().rstrip("/"), key))
    return tuple(keys)
