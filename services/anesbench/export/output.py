"""Write a file whole or not at all: a temporary file beside the target, renamed when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from anesbench.errors import InvalidInput


def check_target(path: str, force: bool, field: str = "out") -> Path:
    """Bad input about ``field`` (before anything is read or written) when the file exists without ``force``,
    or its folder is missing."""
    target = Path(path)
    if target.exists() and not force:
        raise InvalidInput(f"{path} already exists; pass {{force}} to replace it", field=field, mentions=("force",))
    if target.exists() and target.is_dir():
        raise InvalidInput(f"{path} is a directory", field=field)
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist", field=field)
    return target


@contextlib.contextmanager
def atomic_output(path: str, force: bool, field: str = "out") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed."""
    target = check_target(path, force, field)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    os.unlink(temporary)  # writers (DuckDB COPY) create the file themselves
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
