"""A dispatcher run from start to end: start (or join, or resume) it, launch its task, cancel, drain.

The steps are the other pieces' (:mod:`~anesbench.dispatcher.validation`,
:mod:`~anesbench.dispatcher.sourcing`, :mod:`~anesbench.dispatcher.persistence`,
:mod:`~anesbench.dispatcher.sizing`); this module orders them and keeps the registry
(:class:`~anesbench.dispatcher.active.ActiveRuns`) true.

:meth:`RunLifecycle.start` reserves the run id before its first ``await``: between looking the id up
and claiming it nothing yields, so two concurrent starts with one id make one run (the second joins
it, or gets ConfigConflict when its spec differs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from anesbench.dataset import Dataset
from anesbench.dispatcher.active import ActiveRun, ActiveRuns
from anesbench.dispatcher.model_runs import launch_model_run
from anesbench.dispatcher.persistence import RunPersistence
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.sizing import RunSizing
from anesbench.dispatcher.sourcing import Loaded, Upload, load
from anesbench.dispatcher.validation import check_quotas, validate_run
from anesbench.engine.config import RunConfig, new_run_id
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, ConfigConflict, Draining
from anesbench.grader import Grader
from anesbench.inference.preflight import preflight
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore

if TYPE_CHECKING:
    from anesbench.kube.pool import ModelPool

log = logging.getLogger(__name__)


class RunLifecycle:
    def __init__(self, store: AsyncStore, grader: Grader, settings: DispatcherSettings, models: ModelPool | None,
                 runs: ActiveRuns) -> None:
        self.store = store
        self.grader = grader
        self.settings = settings
        self.models = models
        self.runs = runs
        self.persistence = RunPersistence(store)
        self.sizing = RunSizing(settings)
        self.draining = False

    # --- starting ---------------------------------------------------------------------------
    async def start(
        self, config: RunConfig, prompt_template: str | None, *, dataset_name: str | None = None,
        upload: Upload | None = None,
    ) -> RunRecord:
        """Validate everything, then start (or join, or resume) the run and return its record."""
        if self.draining:
            raise Draining("the dispatcher is shutting down; retry shortly")
        config, template = validate_run(config, prompt_template, self.settings, self.models)
        run_id = config.run_id or new_run_id(config.model, upload[0] if upload is not None else dataset_name or "")
        config = dataclasses.replace(config, run_id=run_id)
        loaded: Loaded | None = None
        while (other := self.runs.get(run_id)) is not None:
            # The id is taken (starting or running): the same spec joins that run, another one is refused.
            if loaded is None:
                loaded = await load(self.settings.datasets_dir, config, template, dataset_name, upload)
            await other.identified.wait()
            if self.runs.get(run_id) is not other:
                continue  # that start failed or the run just ended: look again
            if other.hash != loaded.hash:
                raise ConfigConflict("a run with that id is active with a different configuration", field="run_id")
            await other.started.wait()
            return other.snapshot() or await self.runs.current(run_id)
        with self.runs.claim(run_id, config) as active:  # no await since the check above: the id is ours
            if loaded is None:
                loaded = await load(self.settings.datasets_dir, config, template, dataset_name, upload)
            active.identify(loaded.hash)
            existing = await self.store.find_run(run_id)
            if existing is not None and existing.status == "completed" and existing.config_hash == loaded.hash:
                self.runs.release(run_id, active)
                return existing
            # The endpoint is up and serves the model before anything is stored (else no run row). An
            # InferenceService has no endpoint yet: the run waits for its Ready condition instead.
            if config.endpoints:
                await preflight(config.endpoints, config.model, api_key=self.settings.key_for(config.endpoints),
                                wait_ready=config.wait_ready, options=HttpOptions(),
                                report=lambda line: log.warning("run %s: %s", run_id, line))
            check_quotas(self.settings, loaded.upload_text)
            await self.persistence.save_upload(loaded)
            spec = self.persistence.spec(config, prompt_template, loaded)
            return await self._launch(active, config, loaded.dataset, template, spec)

    async def _launch(
        self, active: ActiveRun, config: RunConfig, dataset: Dataset, template: PromptTemplate, spec: str | None
    ) -> RunRecord:
        """Start the run's task on a reserved id and return once the run has begun (or failed to)."""
        run_id = config.run_id or ""
        if config.inference_service:
            return await launch_model_run(self, active, dataset, template, spec)
        sized, limiter = await self.sizing.join(run_id, config)

        async def execute() -> RunRecord:
            try:
                if spec is not None:
                    await self.persistence.save_spec(run_id, spec)
                return await execute_run(
                    sized, dataset, template, self.store, self.grader, api_key=self.settings.key_for(config.endpoints),
                    # a drain leaves the run 'running' so the next dispatcher resumes it; cancel() marks it
                    observer=active, status_on_cancel=None,
                    limiter=limiter,
                )
            finally:
                self.sizing.leave(run_id, config)
                self.runs.release(run_id, active)

        task = active.begin(execute())
        await asyncio.wait({task, asyncio.ensure_future(active.started.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        return active.snapshot() or await self.runs.current(run_id)

    # --- resuming ---------------------------------------------------------------------------
    async def resume_unfinished(self) -> list[str]:
        """Restart every run the store says is unfinished and that this dispatcher started.

        A run whose stored spec cannot be read, or whose dataset is gone, is marked failed with the
        reason; the others resume and the dispatcher serves on.
        """
        resumed: list[str] = []
        async for run_id, spec_text in self.persistence.unfinished():
            try:
                await self._resume(run_id, spec_text)
                resumed.append(run_id)
            except Exception as exc:  # this run alone fails; a bug is logged with its traceback
                reason = str(exc) if isinstance(exc, AnesbenchError) else f"{type(exc).__name__}: {exc}"
                log.error("cannot resume run %s: %s", run_id, reason, exc_info=not isinstance(exc, AnesbenchError))
                await self.store.finish_run(run_id, "failed", f"resume failed: {reason}")
        return resumed

    async def _resume(self, run_id: str, spec_text: str) -> None:
        spec = self.persistence.read_spec(spec_text)
        config, template = validate_run(dataclasses.replace(spec.config, run_id=run_id), spec.prompt_template,
                                        self.settings, self.models)
        upload = await self.persistence.read_upload(spec.dataset)
        if run_id in self.runs:
            return  # already running (resumed or started meanwhile)
        with self.runs.claim(run_id, config) as active:
            loaded = await load(self.settings.datasets_dir, config, template, spec.dataset.name, upload)
            active.identify(loaded.hash)
            await self._launch(active, config, loaded.dataset, template, None)

    # --- stopping ---------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> RunRecord:
        active = self.runs.get(run_id)
        if active is None:
            run = await self.store.get_run(run_id)
            if run.status in ("pending", "running"):
                return await self.store.finish_run(run_id, "cancelled", None)
            return run
        if active.task is not None:
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        run = await self.store.get_run(run_id)
        if run.status == "running":
            run = await self.store.finish_run(run_id, "cancelled", None)
        return run

    async def drain(self) -> None:
        """Stop every run where it is; finished results are flushed and the runs stay resumable."""
        self.draining = True
        tasks = self.runs.tasks()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
