"""Where a run's questions come from, ready to run: its dataset loaded, validated and hashed.

A run names a dataset in --datasets-dir or uploads one (:mod:`anesbench.dispatcher.sources`).
:func:`load` does the work in a worker thread: an upload may hold 200,000 items, and the event
loop keeps serving every other run's progress stream meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from anesbench.dataset import Dataset
from anesbench.dispatcher.run_spec import DatasetRef
from anesbench.dispatcher.sources import named_dataset, uploaded_dataset
from anesbench.engine.config import RunConfig, config_hash
from anesbench.prompts import PromptTemplate

Upload = tuple[str, list[dict[str, Any]]]  # (dataset name, item records) as a client sent them


class Loaded(NamedTuple):
    """A run's dataset, validated and hashed off the event loop."""

    dataset: Dataset
    ref: DatasetRef
    upload_text: str | None  # the canonical JSON of an upload, to keep in the store
    hash: str  # config_hash: what a run with the same id must match


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
