"""Read AnesBench files (JSON array, JSON Lines, Parquet) into a validated :class:`Dataset`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from anesbench.dataset.model import LANGUAGES, Item
from anesbench.dataset.validate import FieldMap, validated
from anesbench.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"
BOM = b"\xef\xbb\xbf"
JSON_STREAM_BYTES = 16 * 1024 * 1024  # a JSON array larger than this is streamed (ijson), like JSON Lines
Reader = Callable[[Path], Iterator[tuple[str, Any]]]  # a file's records, each with where it stands


class ItemsOnDisk:
    """The validated questions of a JSON Lines or Parquet file, read again from disk on each pass.

    The file was validated whole before the run (every problem reported before any request); the
    run then streams it, so memory does not grow with the number of questions.
    """

    def __init__(self, path: Path, reader: Reader, languages: tuple[str, ...], count: int,
                 fields: FieldMap | None = None) -> None:
        self._path, self._reader, self._languages, self._count = path, reader, languages, count
        self._fields = fields

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Item]:
        records = self._reader(self._path)
        # Validated whole before the run (duplicates included); this pass only notices a changed file.
        problems = yield from validated(records, self._languages, str(self._path), self._fields, unique=False)
        if problems.count or problems.items != self._count:
            raise InvalidInput(f"{self._path}: the file changed while a run was reading it; start the run again")


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    sha256: str
    items: Sequence[Item] | ItemsOnDisk


def _check_languages(languages: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(languages))
    unknown = [lang for lang in wanted if lang not in LANGUAGES]
    if unknown or not wanted:
        raise InvalidInput(
            f"unknown language(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(LANGUAGES)}", field="languages")
    return wanted


def _json_records(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a JSON array of questions, got {type(data).__name__}")
    for index, record in enumerate(data):
        yield f"{path} item #{index}", record


def _json_stream(path: Path, head: bytes) -> Iterator[tuple[str, Any]]:
    """The records of a large JSON array (or ``{"data": [...]}``) one by one, never the whole file."""
    import ijson

    text = head.removeprefix(BOM).lstrip()
    prefix = "data.item" if text.startswith(b"{") else "item"
    index = 0
    with path.open("rb") as data:
        if head.startswith(BOM):
            data.read(len(BOM))
        try:
            for record in ijson.items(data, prefix, use_float=True):
                yield f"{path} item #{index}", record
                index += 1
        except ijson.JSONError as exc:
            raise InvalidInput(f"{path}: invalid JSON after item #{index}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not index and not text.startswith((b"[", b"{")):
        raise InvalidInput(f"{path}: expected a JSON array of questions")


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    """One line at a time: a large file is never held in memory whole."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM):]
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not UTF-8 text (byte {exc.start})") from None
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
            yield f"{path}:{number}", record


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
        index = 0
        for batch in batches:
            for record in batch.to_pylist():
                yield f"{path} row {index}", record
                index += 1
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InvalidInput(f"{path}: unreadable Parquet file: {exc}") from None


def _reader(path: Path, head: bytes) -> Reader:
    """Parquet, JSON Lines, a JSON array too large to hold whole (streamed, ijson) or a JSON array."""
    if head[:4] == PARQUET_MAGIC or path.suffix == ".parquet":
        return _parquet_records
    if path.suffix in (".jsonl", ".ndjson") or (
        path.suffix != ".json" and not head.removeprefix(BOM).lstrip().startswith(b"[")
    ):
        return _jsonl_records
    return partial(_json_stream, head=head) if path.stat().st_size > JSON_STREAM_BYTES else _json_records


def load_dataset(
    path: str | Path, languages: Iterable[str] = ("en",), name: str | None = None, fields: FieldMap | None = None
) -> Dataset:
    """Load and validate ``path`` for ``languages``; raise InvalidInput naming every problem.

    ``fields`` reads another layout through a column mapping (:mod:`anesbench.dataset.validate`); the
    sha256 then covers the file and the mapping.

    >>> load_dataset("data/sample/anesbench-sample.jsonl", ["en", "zh"]).name
    'anesbench-sample'
    """
    wanted = _check_languages(languages)
    file = Path(path)
    if fields is not None and wanted != (fields.language,):
        raise InvalidInput(f"{file}: the field mapping reads language {fields.language!r} only; "
                           f"ask for {fields.language} alone", field="languages")
    try:
        with file.open("rb") as data:
            head = data.read(4096)  # to tell the format
            data.seek(0)
            sha256 = hashlib.file_digest(data, "sha256").hexdigest()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {file}", field="dataset") from None
    except IsADirectoryError:
        raise InvalidInput(f"{file} is a directory, expected a .json, .jsonl or .parquet file", field="dataset") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", field="dataset") from None
    reader = _reader(file, head)
    records = reader(file)
    items: Sequence[Item] | ItemsOnDisk
    if reader is not _json_records:
        # Only the ids are held while validating; the run reads the file again.
        items = ItemsOnDisk(file, reader, wanted, sum(1 for _ in validated(records, wanted, str(file), fields)), fields)
    else:
        items = list(validated(records, wanted, str(file), fields))
    return Dataset(name=name or file.name.split(".")[0], sha256=fields.sha256(sha256) if fields else sha256,
                   items=items)


def dataset_from_items(
    name: str, sha256: str, records: Iterable[tuple[str, Any]], languages: Iterable[str]
) -> Dataset:
    """Validate records that arrived some other way (e.g. uploaded over gRPC)."""
    wanted = _check_languages(languages)
    return Dataset(name=name, sha256=sha256, items=list(validated(records, wanted, name)))
