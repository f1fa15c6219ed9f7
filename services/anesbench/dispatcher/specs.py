"""What a dispatcher's run is made of, and what is kept of it so that a restarted dispatcher resumes it.

A run's questions come from a named dataset in ``--datasets-dir`` (a name is matched against the files
there: clients never make the dispatcher open a path) or from an upload, validated like any dataset
and kept in the store under its sha256. :func:`load` runs in a worker thread (200,000 items take seconds).

Each run's spec (:class:`StoredSpec`: config, prompt template, dataset reference) is stored as JSON
with a schema version; :meth:`StoredSpec.from_dict` checks every field by name and type, and a spec
that no longer fits raises InvalidInput naming the field (``config.beam_width: unknown field``).

Version history: 0 (no ``version`` key; the same layout as 1), 1 (adds ``version``). ``config.elicit``
came later without a new version: a spec without it is a run from before elicitation, read as ``off``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from anesbench.dataset import Dataset, dataset_from_items, load_dataset
from anesbench.engine.config import RunConfig
from anesbench.errors import InvalidInput, NotFound
from anesbench.wire import DATASET_NAME

SPEC_VERSION = 1
_CONFIG_FIELDS = {f.name: f for f in fields(RunConfig)}
_REQUIRED = ("model", "endpoints")
SUFFIXES = (".jsonl", ".json", ".parquet")
# A RunConfig field's annotation -> whether a JSON value fits it, and what the error says was expected.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda value: isinstance(value, str), "a string"),
    "bool": (lambda value: isinstance(value, bool), "true or false"),
    "int": (lambda value: isinstance(value, int) and not isinstance(value, bool), "an integer"),
    "float": (lambda value: isinstance(value, int | float) and not isinstance(value, bool), "a number"),
    "tuple[str, ...]": (lambda value: isinstance(value, list | tuple) and all(isinstance(v, str) for v in value),
                        "a list of strings"),
}

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

    def to_json(self) -> str:
        data = {"version": SPEC_VERSION, "config": asdict(self.config), "prompt_template": self.prompt_template,
                "dataset": asdict(self.dataset)}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoredSpec:
        """Read a stored spec; the InvalidInput says that it cannot be read, and why."""
        try:
            return cls.from_dict(json.loads(text))
        except (InvalidInput, ValueError) as exc:
            why = exc if isinstance(exc, InvalidInput) else f"spec: not JSON: {exc}"
            raise InvalidInput(f"the stored run spec cannot be read: {why}") from None

    @classmethod
    def from_dict(cls, data: object) -> StoredSpec:
        """Read a stored spec of this or an earlier schema version; InvalidInput names what does not fit."""
        spec = _mapping(data, "spec")
        version = spec.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= SPEC_VERSION:
            raise InvalidInput(f"schema version {version!r} is not one this dispatcher reads (0 to {SPEC_VERSION}); "
                               "it was written by a newer anesbench", field="version")
        _no_unknown(spec, {"version", "config", "prompt_template", "dataset"}, "")
        template = _optional_str(spec.get("prompt_template"), "prompt_template")
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
    if missing := [name for name in _REQUIRED if name not in data]:
        raise InvalidInput("missing", field=f"config.{missing[0]}")
    # a spec stored before elicitation existed: its runs had none
    values = {"elicit": "off", **{name: _value(name, value) for name, value in data.items()}}
    try:
        return RunConfig(**values)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"config.{exc.field}" if exc.field else "config") from None


def _value(name: str, value: Any) -> Any:
    """One RunConfig field, checked against the type it is annotated with today."""
    kind = str(_CONFIG_FIELDS[name].type)
    if value is None and kind.endswith(" | None"):
        return None
    fits, expected = _KINDS[kind.removesuffix(" | None")]
    if not fits(value):
        raise InvalidInput(f"expected {expected}, got {value!r}", field=f"config.{name}")
    return tuple(value) if kind == "tuple[str, ...]" else float(value) if kind == "float" else value


def _optional_str(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(f"expected a string or null, got {type(value).__name__}", field=field)


def _dataset(data: Mapping[str, Any]) -> DatasetRef:
    _no_unknown(data, {"name", "upload_sha256"}, "dataset.")
    ref = DatasetRef(*(_optional_str(data.get(key), f"dataset.{key}") for key in ("name", "upload_sha256")))
    if bool(ref.name) == bool(ref.upload_sha256):
        raise InvalidInput("exactly one of name and upload_sha256 must be set", field="dataset")
    return ref


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


def uploaded_dataset(
    name: str, records: Sequence[Mapping[str, Any]], languages: Iterable[str]
) -> tuple[Dataset, str]:
    """The validated dataset and its canonical JSON text, whose sha256 (computed here, not trusted from the
    client) names the stored copy. CPU-heavy for large uploads: call it off the event loop."""
    if not DATASET_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a dataset name (letters, digits, '.', '_', '-')", field="upload.name")
    text = json.dumps(records, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    items = ((f"upload item #{index}", record) for index, record in enumerate(records))
    return dataset_from_items(name, hashlib.sha256(text.encode()).hexdigest(), items, languages), text


def load(datasets_dir: str | None, config: RunConfig, dataset_name: str | None,
         upload: Upload | None) -> tuple[Dataset, str | None]:
    """The run's dataset, validated: from ``upload`` if given (with its canonical JSON, to keep in the
    store), else ``dataset_name`` in ``datasets_dir`` (and None)."""
    if upload is not None:
        return uploaded_dataset(upload[0], upload[1], config.languages)
    return named_dataset(datasets_dir, dataset_name or "", config.languages), None
