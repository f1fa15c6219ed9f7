"""``anesbench export``: every result of a run as JSON Lines, CSV or Parquet, streamed.

Row writers take export rows one by one (from a dispatcher stream, or to stdout). The embedded
command with ``--out`` lets DuckDB ``COPY`` write the file instead; these writers produce the same
columns, and the same JSON/CSV spelling of values (``null``/empty, ``true``/``false``). A file is
written whole or not at all: a temporary file beside the target, renamed when complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from anesbench.errors import InvalidInput
from anesbench.store.export_sql import EXPORT_NAMES, SELECT_EXPORT
from anesbench.store.schema import SCHEMA


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, row: dict[str, Any]) -> None:
        self.out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        self.out.flush()


class CsvWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self.csv = csv.writer(self.out, lineterminator="\n")
        self.csv.writerow(EXPORT_NAMES)

    def write(self, row: dict[str, Any]) -> None:
        self.csv.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v)
                           for v in row.values()])

    def close(self) -> None:
        self.out.flush()
        self.out.detach()


class ParquetWriter:
    BATCH = 2000

    def __init__(self, out: IO[bytes]) -> None:
        with duckdb.connect() as con:  # the types DuckDB's own COPY writes
            con.execute(SCHEMA)
            self.schema = con.execute(f"{SELECT_EXPORT} LIMIT 0").to_arrow_table().schema
        self.writer = pq.ParquetWriter(out, self.schema)
        self.rows: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def open_writer(fmt: str, out: IO[bytes]) -> RowWriter:
    writers: dict[str, Callable[[IO[bytes]], RowWriter]] = {"jsonl": JsonLinesWriter, "csv": CsvWriter, "parquet": ParquetWriter}
    return writers[fmt](out)


def check_target(path: str, force: bool) -> Path:
    """Bad input about ``out`` (before anything is read or written) when the file exists without ``force``,
    or its folder is missing."""
    target = Path(path)
    if target.exists() and not force:
        raise InvalidInput(f"{path} already exists; pass {{force}} to replace it", field="out", mentions=("force",))
    if target.exists() and target.is_dir():
        raise InvalidInput(f"{path} is a directory", field="out")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist", field="out")
    return target


@contextlib.contextmanager
def atomic_output(path: str, force: bool) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed."""
    target = check_target(path, force)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    os.unlink(temporary)  # writers (DuckDB COPY) create the file themselves
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
