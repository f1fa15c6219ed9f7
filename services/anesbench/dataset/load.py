"""Read AnesBench files (JSON array, JSON Lines, Parquet) into a validated :class:`Dataset`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anesbench.dataset.model import LANGUAGES, Item
from anesbench.dataset.validate import validate_records
from anesbench.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True, slots=True)
class Dataset:
    """Validated items plus what identifies them in a run record."""

    name: str
    sha256: str
    items: list[Item]


def _check_languages(languages: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(languages))
    unknown = [lang for lang in wanted if lang not in LANGUAGES]
    if unknown or not wanted:
        raise InvalidInput(
            f"--languages: unknown language(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(LANGUAGES)}"
        )
    return wanted


def _json_records(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a JSON array of questions, got {type(data).__name__}")
    for index, record in enumerate(data):
        yield f"{path} item #{index}", record


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
        yield f"{path}:{number}", record


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise InvalidInput(f"{path}: unreadable Parquet file: {exc}") from None
    for index, record in enumerate(table.to_pylist()):
        yield f"{path} row {index}", record


def _records(path: Path, raw: bytes) -> Iterator[tuple[str, Any]]:
    if raw[:4] == PARQUET_MAGIC or path.suffix == ".parquet":
        return _parquet_records(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix in (".jsonl", ".ndjson") or (path.suffix != ".json" and not text.lstrip().startswith("[")):
        return _jsonl_records(path, text)
    return _json_records(path, text)


def load_dataset(path: str | Path, languages: Iterable[str] = ("en",), name: str | None = None) -> Dataset:
    """Load and validate ``path`` for ``languages``; raise InvalidInput naming every problem.

    >>> load_dataset("data/sample/anesbench-sample.jsonl", ["en", "zh"]).name
    'anesbench-sample'
    """
    wanted = _check_languages(languages)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"--dataset: no such file: {file}") from None
    except IsADirectoryError:
        raise InvalidInput(f"--dataset: {file} is a directory, expected a .json, .jsonl or .parquet file") from None
    except OSError as exc:
        raise InvalidInput(f"--dataset: cannot read {file}: {exc.strerror}") from None
    items = validate_records(_records(file, raw), wanted, str(file))
    return Dataset(name=name or file.name.split(".")[0], sha256=hashlib.sha256(raw).hexdigest(), items=items)


def dataset_from_items(
    name: str, sha256: str, records: Iterable[tuple[str, Any]], languages: Iterable[str]
) -> Dataset:
    """Validate records that arrived some other way (e.g. uploaded over gRPC)."""
    wanted = _check_languages(languages)
    return Dataset(name=name, sha256=sha256, items=validate_records(records, wanted, name))
