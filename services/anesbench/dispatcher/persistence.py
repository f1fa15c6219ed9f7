"""What a dispatcher keeps so that its runs survive a restart, and reading it back on resume.

An upload is kept in the store under its sha256 and each run's spec (:class:`StoredSpec`: config,
prompt template, dataset reference) under its id. On start-up :meth:`RunPersistence.unfinished`
lists the runs to resume with their spec; a spec or upload that cannot be read raises one of our
errors, so that run alone fails with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from anesbench.dispatcher.run_spec import DatasetRef, StoredSpec
from anesbench.dispatcher.sourcing import Loaded, Upload
from anesbench.engine.config import RunConfig
from anesbench.errors import ConfigConflict, InvalidInput
from anesbench.store.async_store import AsyncStore

log = logging.getLogger(__name__)


class RunPersistence:
    def __init__(self, store: AsyncStore) -> None:
        self._store = store

    async def save_upload(self, loaded: Loaded) -> None:
        """Keep an uploaded dataset (a named one stays in --datasets-dir)."""
        if loaded.upload_text is not None:
            await self._store.save_upload(loaded.dataset.sha256, loaded.dataset.name, loaded.upload_text)

    @staticmethod
    def spec(config: RunConfig, prompt_template: str | None, loaded: Loaded) -> str:
        """The run's spec as it is stored (:meth:`save_spec`)."""
        return StoredSpec(config, prompt_template or None, loaded.ref).to_json()

    async def save_spec(self, run_id: str, spec: str) -> None:
        await self._store.save_spec(run_id, spec)

    async def unfinished(self) -> AsyncIterator[tuple[str, str]]:
        """(run id, stored spec) of each unfinished run this dispatcher started, one store read at a time.

        An unfinished run without a spec was an embedded run in the same file, and its process is gone
        (this dispatcher holds the file): it is marked failed with the reason instead
        (:meth:`anesbench.store.Store.fail_abandoned`)."""
        abandoned = await self._store.fail_abandoned()
        if abandoned:
            log.warning("marked failed, their process gone: %s", ", ".join(abandoned))
        for run in await self._store.unfinished_runs():
            spec_text = await self._store.load_spec(run.id)
            if spec_text is not None:
                yield run.id, spec_text

    @staticmethod
    def read_spec(spec_text: str) -> StoredSpec:
        try:
            return StoredSpec.from_json(spec_text)
        except InvalidInput as exc:
            raise InvalidInput(f"the stored run spec cannot be read: {exc}") from None

    async def read_upload(self, dataset: DatasetRef) -> Upload | None:
        """The upload a stored spec refers to, as it was sent (None for a named dataset)."""
        if not dataset.upload_sha256:
            return None
        stored = await self._store.load_upload(dataset.upload_sha256)
        if stored is None:
            raise ConfigConflict(f"upload {dataset.upload_sha256} is missing from the store")
        return stored[0], await asyncio.to_thread(json.loads, stored[1])
