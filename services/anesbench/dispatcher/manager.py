"""The dispatcher's core, independent of gRPC: start, follow, cancel and resume runs.

It is the only writer of the DuckDB file. Each run is an asyncio task executing the shared engine;
runs on one endpoint share its concurrency fairly; after a restart, unfinished runs resume by
themselves from the specs kept in the store (:mod:`anesbench.dispatcher.run_spec`); a spec that
cannot be read fails that run alone, with the reason.

:class:`RunManager` is the facade the gRPC service calls; each job is a module of its own:

* :mod:`~anesbench.dispatcher.validation`: the request against this dispatcher's policy;
* :mod:`~anesbench.dispatcher.sourcing`: the dataset, loaded, validated and hashed;
* :mod:`~anesbench.dispatcher.persistence`: the upload and spec kept for a restart, read back on resume;
* :mod:`~anesbench.dispatcher.sizing`: the run's concurrency and its fair share of the endpoint;
* :mod:`~anesbench.dispatcher.lifecycle`: start, join, launch, resume, cancel, drain;
* :mod:`~anesbench.dispatcher.active`: the registry of the runs held right now;
* :mod:`~anesbench.dispatcher.reads`: get, list, leaderboard, export, watch.

Two guarantees hold across them. A run id is reserved in the registry before the first ``await``
of :meth:`RunManager.start` (:meth:`~anesbench.dispatcher.lifecycle.RunLifecycle.start` claims it
with :meth:`~anesbench.dispatcher.active.ActiveRuns.claim`), so two concurrent starts with one id
make one run: the second gets the same run back, or ConfigConflict when its spec differs. Loading,
validating and hashing a dataset (an upload may hold 200,000 items) runs in a worker thread
(:func:`anesbench.dispatcher.sourcing.load`), so the event loop keeps serving every other run's
progress stream.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any

from anesbench.dispatcher.active import ActiveRuns
from anesbench.dispatcher.lifecycle import RunLifecycle
from anesbench.dispatcher.model_runs import model_pool
from anesbench.dispatcher.reads import RunReads
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.sourcing import Upload
from anesbench.engine.config import RunConfig
from anesbench.grader import Grader
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore
from anesbench.store.leaderboard_sql import LeaderboardRow


class RunManager:
    def __init__(self, store: AsyncStore, grader: Grader, settings: DispatcherSettings) -> None:
        self.store = store
        self.grader = grader
        self.settings = settings
        self.models = model_pool(settings)  # InferenceServices, with --kube-namespace
        runs = ActiveRuns(store)
        self._lifecycle = RunLifecycle(store, grader, settings, self.models, runs)
        self._reads = RunReads(store, runs)

    @property
    def draining(self) -> bool:
        return self._lifecycle.draining

    # --- changing runs ----------------------------------------------------------------------
    async def start(
        self, config: RunConfig, prompt_template: str | None, *, dataset_name: str | None = None,
        upload: Upload | None = None,
    ) -> RunRecord:
        """Validate everything, then start (or join, or resume) the run and return its record."""
        return await self._lifecycle.start(config, prompt_template, dataset_name=dataset_name, upload=upload)

    async def resume_unfinished(self) -> list[str]:
        """Restart every unfinished run this dispatcher started; returns their ids (unreadable ones fail)."""
        return await self._lifecycle.resume_unfinished()

    async def cancel(self, run_id: str) -> RunRecord:
        return await self._lifecycle.cancel(run_id)

    async def drain(self) -> None:
        """Stop every run where it is; finished results are flushed and the runs stay resumable."""
        await self._lifecycle.drain()

    # --- reading ----------------------------------------------------------------------------
    async def get(self, run_id: str) -> RunRecord:
        return await self._reads.get(run_id)

    async def list(self) -> builtins.list[RunRecord]:
        return await self._reads.list()

    async def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool) -> builtins.list[LeaderboardRow]:
        return await self._reads.leaderboard(run_ids, include_incomplete)

    def export_pages(self, run_id: str, page_size: int = 5000) -> AsyncIterator[builtins.list[tuple[Any, ...]]]:
        """A run's export rows page by page (one store call per page, so writers are never held up long)."""
        return self._reads.export_pages(run_id, page_size)

    def watch(self, run_id: str) -> AsyncIterator[tuple[RunRecord, float]]:
        """Progress snapshots while the run is active (≤ 10/s, only on change), then the final record."""
        return self._reads.watch(run_id)
