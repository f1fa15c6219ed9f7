"""What a dispatcher's run is made of, and what is kept of it so that a restarted dispatcher resumes it.

A run's questions come from a named dataset in ``--datasets-dir`` or from an upload. Clients never
make the dispatcher open a path: a name is matched against the files in the directory, and uploads are
validated like any dataset and kept in the store under their sha256. :func:`load` does the work in a
worker thread: an upload may hold 200,000 items, and the event loop keeps serving every other run's
progress stream meanwhile.

Each run's spec (:class:`StoredSpec`: config, prompt template, dataset reference) is stored as JSON
with a schema version and read back by :meth:`StoredSpec.from_dict`, which checks every field by
name and type: a spec written by another version that no longer fits raises
:class:`~anesbench.errors.InvalidInput` naming the field (``config.beam_width: unknown field``), and
the dispatcher fails that run alone with the reason.

Version history: 0 (no ``version`` key; the same layout as 1), 1 (adds ``version``). ``config.elicit``
came later without a new version: a spec without it is a run from before elicitation, read as ``off``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from anesbench.dataset import Dataset, dataset_from_items, load_dataset
from anesbench.engine.config import RunConfig, config_hash
from anesbench.errors import ConfigConflict, InvalidInput, NotFound
from anesbench.prompts import PromptTemplate
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.wire import DATASET_NAME

SPEC_VERSION = 1
_CONFIG_FIELDS = {f.name: f for f in fields(RunConfig)}
_REQUIRED = ("model", "endpoints")
SUFFIXES = (".jsonl", ".json", ".parquet")

Upload = tuple[str, list[dict[str, Any]]]  # (dataset name, item records) as a client sent them


@dataclass(frozen=True, slots=True)
class DatasetRef:
    name: str | None = None  # a dataset in --datasets-dir
    upload_sha256: str | None = None  # an upload kept in the store


@dataclass(frozen=True, slots=True)
class StoredSpec:
    config: RunConfig
    prompt_template: str | None
    dataset: DatasetRef

    def to_dict(self) -> dict[str, Any]:
        return {"version": SPEC_VERSION, "config": asdict(self.config), "prompt_template": self.prompt_template,
                "dataset": asdict(self.dataset)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoredSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"not JSON: {exc}", field="spec") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> StoredSpec:
        """Read a stored spec of this or an earlier schema version; InvalidInput names what does not fit."""
        spec = _mapping(data, "spec")
        version = spec.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= SPEC_VERSION:
            raise InvalidInput(f"schema version {version!r} is not one this dispatcher reads (0 to {SPEC_VERSION}); "
                               "it was written by a newer anesbench", field="version")
        _no_unknown(spec, {"version", "config", "prompt_template", "dataset"}, "")
        template = spec.get("prompt_template")
        if template is not None and not isinstance(template, str):
            raise InvalidInput(f"expected a string or null, got {type(template).__name__}", field="prompt_template")
        return cls(config=_config(_mapping(spec.get("config"), "config")), prompt_template=template or None,
                   dataset=_dataset(_mapping(spec.get("dataset"), "dataset")))


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"expected an object, got {type(value).__name__}", field=field)
    return value


def _no_unknown(data: Mapping[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput("unknown field (written by another anesbench version)", field=prefix + str(unknown[0]))


def _config(data: Mapping[str, Any]) -> RunConfig:
    _no_unknown(data, set(_CONFIG_FIELDS), "config.")
    for name in _REQUIRED:
        if name not in data:
            raise InvalidInput("missing", field=f"config.{name}")
    values: dict[str, Any] = {"elicit": "off"}  # a spec stored before elicitation existed: its runs had none
    for name, value in data.items():
        values[name] = _value(name, value)
    try:
        return RunConfig(**values)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"config.{exc.field}" if exc.field else "config") from None


def _value(name: str, value: Any) -> Any:
    """One RunConfig field, checked against the type it has today."""
    field = f"config.{name}"
    optional = name in ("concurrency", "run_id", "limit", "inference_service", "namespace")
    if value is None and optional:
        return None
    if name in ("endpoints", "languages"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InvalidInput("expected a list of strings", field=field)
        return tuple(value)
    if name in ("model", "run_id", "inference_service", "namespace", "elicit", "scoring"):
        if not isinstance(value, str):
            raise InvalidInput(f"expected a string, got {type(value).__name__}", field=field)
        return value
    if name == "reuse":
        if not isinstance(value, bool):
            raise InvalidInput(f"expected true or false, got {value!r}", field=field)
        return value
    if name in ("temperature", "request_timeout", "wait_ready"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"expected a number, got {value!r}", field=field)
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):  # concurrency, max_tokens, samples, max_attempts, limit
        raise InvalidInput(f"expected an integer, got {value!r}", field=field)
    return value


def _dataset(data: Mapping[str, Any]) -> DatasetRef:
    _no_unknown(data, {"name", "upload_sha256"}, "dataset.")
    name, sha = data.get("name"), data.get("upload_sha256")
    for field, value in (("name", name), ("upload_sha256", sha)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"expected a string or null, got {type(value).__name__}", field=f"dataset.{field}")
    if bool(name) == bool(sha):
        raise InvalidInput("exactly one of name and upload_sha256 must be set", field="dataset")
    return DatasetRef(name=name, upload_sha256=sha)
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


class Loaded(NamedTuple):
    """A run's dataset, validated and hashed off the event loop."""

    dataset: Dataset
    ref: DatasetRef
    upload_text: str | None  # the canonical JSON of an upload, to keep in the store
    hash: str  # config_hash: what a run with the same id must match

    def spec(self, config: RunConfig, prompt_template: str | None) -> str:
        """The run's spec as it is stored."""
        return StoredSpec(config, prompt_template or None, self.ref).to_json()


async def load(
    datasets_dir: str | None, config: RunConfig, template: PromptTemplate, dataset_name: str | None,
    upload: Upload | None,
) -> Loaded:
    """The run's dataset from ``upload`` if given, else ``dataset_name`` in ``datasets_dir`` (in a worker thread)."""
    return await asyncio.to_thread(_load, datasets_dir, config, template, dataset_name, upload)


def _load(
    datasets_dir: str | None, config: RunConfig, template: PromptTemplate, dataset_name: str | None,
    upload: Upload | None,
) -> Loaded:
    if upload is not None:
        dataset, text = uploaded_dataset(upload[0], upload[1], config.languages)
        ref = DatasetRef(upload_sha256=dataset.sha256)
    else:
        dataset = named_dataset(datasets_dir, dataset_name or "", config.languages)
        ref, text = DatasetRef(name=dataset_name), None
    return Loaded(dataset, ref, text, config_hash(config, dataset, template))


def read_spec(spec_text: str) -> StoredSpec:
    try:
        return StoredSpec.from_json(spec_text)
    except InvalidInput as exc:
        raise InvalidInput(f"the stored run spec cannot be read: {exc}") from None


async def read_upload(store: AsyncStore, dataset: DatasetRef) -> Upload | None:
    """The upload a stored spec refers to, as it was sent (None for a named dataset)."""
    if not dataset.upload_sha256:
        return None
    stored = await store.call(Store.load_upload, dataset.upload_sha256)
    if stored is None:
        raise ConfigConflict(f"upload {dataset.upload_sha256} is missing from the store")
    return stored[0], await asyncio.to_thread(json.loads, stored[1])
