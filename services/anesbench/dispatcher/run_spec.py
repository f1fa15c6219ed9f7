"""What the dispatcher keeps of each run it starts, so that a restarted dispatcher can resume it.

The spec is stored as JSON with a schema version and read back by :meth:`StoredSpec.from_dict`,
which checks every field by name and type: a spec written by another version that no longer fits
raises :class:`~anesbench.errors.InvalidInput` naming the field (``config.beam_width: unknown
field``), and the dispatcher fails that run alone with the reason.

Version history: 0 (no ``version`` key; the same layout as 1), 1 (adds ``version``). ``config.elicit``
came later without a new version: a spec without it is a run from before elicitation, read as ``off``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from anesbench.engine.config import RunConfig
from anesbench.errors import InvalidInput

SPEC_VERSION = 1
_CONFIG_FIELDS = {f.name: f for f in fields(RunConfig)}
_REQUIRED = ("model", "endpoints")


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
    if name in ("model", "run_id", "inference_service", "namespace", "elicit"):
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
