"""Where a dispatcher's run gets its questions: a named dataset in its ``--datasets-dir``, or an upload.

Clients never make the dispatcher open a path: a name is matched against the files in the
directory, and uploads are validated like any dataset and kept in the store (so a restarted
dispatcher can resume the run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from anesbench.dataset import Dataset, dataset_from_items, load_dataset
from anesbench.errors import InvalidInput, NotFound
from anesbench.wire.names import DATASET_NAME

SUFFIXES = (".jsonl", ".json", ".parquet")


def named_dataset(datasets_dir: str | None, name: str, languages: Iterable[str]) -> Dataset:
    if not DATASET_NAME.match(name) or ".." in name:
        raise InvalidInput(f"{name!r} is not a dataset name (letters, digits, '.', '_', '-')", field="dataset_name")
    if not datasets_dir:
        raise NotFound("this dispatcher has no {datasets_dir}; upload the dataset with the run", field="dataset_name",
                       mentions=("datasets_dir",))
    root = Path(datasets_dir)
    for suffix in SUFFIXES:
        candidate = root / f"{name}{suffix}"
        if candidate.is_file():
            return load_dataset(candidate, languages, name=name)
    available = sorted({p.name.split(".")[0] for p in root.glob("*") if p.suffix in SUFFIXES}) if root.is_dir() else []
    raise NotFound(f"no dataset {name!r} in the datasets directory (available: {', '.join(available) or 'none'})",
                   field="dataset_name")


def canonical_records(records: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The JSON text of uploaded records and its sha256 (computed here, not trusted from the client)."""
    text = json.dumps(records, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


def uploaded_dataset(
    name: str, records: Sequence[Mapping[str, Any]], languages: Iterable[str]
) -> tuple[Dataset, str]:
    """The validated dataset and its canonical JSON text (computed once: the sha256 and the stored copy).

    CPU-heavy for large uploads (200,000 items take seconds): call it off the event loop.
    """
    if not DATASET_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a dataset name (letters, digits, '.', '_', '-')", field="upload.name")
    text, sha = canonical_records(records)
    dataset = dataset_from_items(
        name, sha, ((f"upload item #{index}", record) for index, record in enumerate(records)), languages
    )
    return dataset, text
