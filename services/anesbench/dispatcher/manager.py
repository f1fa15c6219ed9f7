"""The dispatcher's core, independent of gRPC: start, follow, cancel and resume runs.

It is the only writer of the DuckDB file. Each run is an asyncio task executing the shared engine;
runs on one endpoint share its concurrency fairly; after a restart, unfinished runs resume by
themselves from the specs kept in the store (:mod:`anesbench.dispatcher.run_spec`); a spec that
cannot be read fails that run alone, with the reason.

A run id is reserved in ``_active`` before the first ``await`` of :meth:`RunManager.start`, so two
concurrent starts with one id make one run: the second gets the same run back, or ConfigConflict
when its spec differs. Loading, validating and hashing a dataset (an upload may hold 200,000 items)
runs in a worker thread, so the event loop keeps serving every other run's progress stream.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from anesbench.dataset import Dataset
from anesbench.dispatcher.model_runs import check_model_run, launch_model_run, model_pool
from anesbench.dispatcher.run_spec import DatasetRef, StoredSpec
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.shares import EndpointShares
from anesbench.dispatcher.sources import named_dataset, uploaded_dataset
from anesbench.engine.config import RunConfig, config_hash, new_run_id
from anesbench.engine.progress import RunProgress
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, ConfigConflict, Draining, InvalidInput
from anesbench.grader import Grader
from anesbench.inference import validate_endpoint
from anesbench.inference.credentials import check_url_credentials
from anesbench.inference.endpoint import check_allowed
from anesbench.inference.preflight import preflight
from anesbench.inference.sizing import MAX_LIMIT, headroom, server_slots
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate, load_template
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore
from anesbench.store.leaderboard_sql import LeaderboardRow

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.1


class Loaded(NamedTuple):
    """A run's dataset, validated and hashed off the event loop."""

    dataset: Dataset
    ref: DatasetRef
    upload_text: str | None  # the canonical JSON of an upload, to keep in the store
    hash: str  # config_hash: what a run with the same id must match


@dataclass(slots=True)
class ActiveRun:
    """A run id taken by this dispatcher: starting (``identified`` not yet set) or running."""

    config: RunConfig
    task: asyncio.Task[RunRecord] | None = None
    record: RunRecord | None = None
    progress: RunProgress | None = None
    identified: asyncio.Event = field(default_factory=asyncio.Event)  # hash known, or the start failed
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    hash: str = ""
    initial_done: int = 0

    def release(self) -> None:
        """Wake everyone waiting on this run (it ended, or it never started)."""
        self.identified.set()
        self.started.set()
        self.finished.set()

    def snapshot(self) -> RunRecord | None:
        if self.record is None:
            return None
        snap = dataclasses.replace(self.record)
        if self.progress is not None:
            snap.done, snap.failed = self.progress.done, self.progress.failed
            snap.correct, snap.unanswered = self.progress.correct, self.progress.unanswered
        return snap

    def rate(self) -> float:
        progress = self.progress
        if progress is None:
            return 0.0
        elapsed = time.monotonic() - progress.started
        return (progress.done - self.initial_done) / elapsed if elapsed > 0 else 0.0

    # RunObserver
    def on_start(self, run: RunRecord, progress: RunProgress) -> None:
        self.record, self.progress, self.initial_done = run, progress, progress.done
        self.started.set()

    def on_result(self, row: Any, progress: RunProgress) -> None:
        pass

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None:
        self.record = run


class RunManager:
    def __init__(self, store: AsyncStore, grader: Grader, settings: DispatcherSettings) -> None:
        self.store = store
        self.grader = grader
        self.settings = settings
        self.draining = False
        self._active: dict[str, ActiveRun] = {}
        self._shares = EndpointShares()
        self.models = model_pool(settings)  # InferenceServices, with --kube-namespace

    # --- starting ---------------------------------------------------------------------------
    def _prepare(self, config: RunConfig, prompt_template: str | None) -> tuple[RunConfig, PromptTemplate]:
        if config.inference_service:
            config = check_model_run(self.models, config)
        endpoints = tuple(validate_endpoint(url) for url in config.endpoints)
        for url in endpoints:
            check_allowed(url, self.settings.allowed_endpoints)
        check_url_credentials(endpoints, self.settings.key_for(endpoints))  # also refuses runs mixing keys
        HttpOptions().check()  # $SSL_CERT_FILE and the proxy variables of the dispatcher's environment
        template = load_template(prompt_template or None, allow_files=False)
        template.require(config.languages)
        return dataclasses.replace(config, endpoints=endpoints), template

    def _load(
        self, config: RunConfig, template: PromptTemplate, dataset_name: str | None,
        upload: tuple[str, list[dict[str, Any]]] | None,
    ) -> Loaded:
        """Load, validate and hash the dataset (blocking, CPU-heavy: runs in a worker thread)."""
        if upload is not None:
            dataset, text = uploaded_dataset(upload[0], upload[1], config.languages)
            ref = DatasetRef(upload_sha256=dataset.sha256)
        else:
            dataset = named_dataset(self.settings.datasets_dir, dataset_name or "", config.languages)
            ref, text = DatasetRef(name=dataset_name), None
        return Loaded(dataset, ref, text, config_hash(config, dataset, template))

    def _reserve(self, run_id: str, config: RunConfig) -> ActiveRun:
        active = ActiveRun(config=config)
        self._active[run_id] = active
        return active

    def _release(self, run_id: str, active: ActiveRun) -> None:
        if self._active.get(run_id) is active:
            del self._active[run_id]
        active.release()

    async def start(
        self, config: RunConfig, prompt_template: str | None, *, dataset_name: str | None = None,
        upload: tuple[str, list[dict[str, Any]]] | None = None,
    ) -> RunRecord:
        """Validate everything, then start (or join, or resume) the run and return its record."""
        if self.draining:
            raise Draining("the dispatcher is shutting down; retry shortly")
        config, template = self._prepare(config, prompt_template)
        run_id = config.run_id or new_run_id(config.model, upload[0] if upload is not None else dataset_name or "")
        config = dataclasses.replace(config, run_id=run_id)
        loaded: Loaded | None = None
        while (other := self._active.get(run_id)) is not None:
            # The id is taken (starting or running): the same spec joins that run, another one is refused.
            if loaded is None:
                loaded = await asyncio.to_thread(self._load, config, template, dataset_name, upload)
            await other.identified.wait()
            if self._active.get(run_id) is not other:
                continue  # that start failed or the run just ended: look again
            if other.hash != loaded.hash:
                raise ConfigConflict("a run with that id is active with a different configuration", field="run_id")
            await other.started.wait()
            return other.snapshot() or await self.get(run_id)
        active = self._reserve(run_id, config)  # no await since the check above: the id is ours
        try:
            if loaded is None:
                loaded = await asyncio.to_thread(self._load, config, template, dataset_name, upload)
            active.hash = loaded.hash
            active.identified.set()
            existing = await self.store.find_run(run_id)
            if existing is not None and existing.status == "completed" and existing.config_hash == loaded.hash:
                self._release(run_id, active)
                return existing
            # The endpoint is up and serves the model before anything is stored (else no run row). An
            # InferenceService has no endpoint yet: the run waits for its Ready condition instead.
            if config.endpoints:
                await preflight(config.endpoints, config.model, api_key=self.settings.key_for(config.endpoints),
                                wait_ready=config.wait_ready, options=HttpOptions(),
                                report=lambda line: log.warning("run %s: %s", run_id, line))
            if loaded.upload_text is not None:
                await self.store.save_upload(loaded.dataset.sha256, loaded.dataset.name,
                                      loaded.upload_text)
            spec = StoredSpec(config, prompt_template or None, loaded.ref).to_json()
            return await self._launch(active, config, loaded.dataset, template, spec)
        except BaseException:
            if active.task is None:
                self._release(run_id, active)
            raise

    async def _launch(
        self, active: ActiveRun, config: RunConfig, dataset: Dataset, template: PromptTemplate, spec: str | None
    ) -> RunRecord:
        """Start the run's task on a reserved id and return once the run has begun (or failed to)."""
        run_id = config.run_id or ""
        if config.inference_service:
            return await launch_model_run(self, active, dataset, template, spec)
        wanted_concurrency = config.concurrency
        capped = config
        if wanted_concurrency is None:
            # Servers that report their slots get that many (plus a short queue); the others are sized
            # by the engine's adaptive limiter, as in embedded runs (the fair share then only caps it).
            found = await asyncio.gather(*(server_slots(url, self.settings.key_for(config.endpoints))
                                           for url in config.endpoints))
            wanted_concurrency = sum(n + headroom(n) if n else MAX_LIMIT for n in found)
            if all(found):
                capped = dataclasses.replace(config, concurrency=wanted_concurrency)
        limiter = self._shares.join(config.endpoint, run_id, wanted_concurrency)

        async def execute() -> RunRecord:
            try:
                if spec is not None:
                    await self.store.save_spec(run_id, spec)
                return await execute_run(
                    capped, dataset, template, self.store, self.grader, api_key=self.settings.key_for(config.endpoints),
                    # a drain leaves the run 'running' so the next dispatcher resumes it; cancel() marks it
                    observer=active, status_on_cancel=None,
                    limiter=limiter,
                )
            finally:
                self._shares.leave(config.endpoint, run_id)
                self._release(run_id, active)

        active.task = asyncio.create_task(execute(), name=f"run-{run_id}")
        active.task.add_done_callback(_log_outcome)
        await asyncio.wait({active.task, asyncio.ensure_future(active.started.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if active.task.done() and active.task.exception() is not None:
            raise active.task.exception()  # type: ignore[misc]
        return active.snapshot() or await self.get(run_id)

    async def resume_unfinished(self) -> list[str]:
        """Restart every run the store says is unfinished and that this dispatcher started.

        A run whose stored spec cannot be read, or whose dataset is gone, is marked failed with the
        reason; the others resume and the dispatcher serves on.
        """
        resumed: list[str] = []
        for run in await self.store.unfinished_runs():
            spec_text = await self.store.load_spec(run.id)
            if spec_text is None:
                continue  # an embedded run in the same file: not ours to finish
            try:
                await self._resume(run.id, spec_text)
                resumed.append(run.id)
            except Exception as exc:  # this run alone fails; a bug is logged with its traceback
                reason = str(exc) if isinstance(exc, AnesbenchError) else f"{type(exc).__name__}: {exc}"
                log.error("cannot resume run %s: %s", run.id, reason, exc_info=not isinstance(exc, AnesbenchError))
                await self.store.finish_run(run.id, "failed", f"resume failed: {reason}")
        return resumed

    async def _resume(self, run_id: str, spec_text: str) -> None:
        try:
            spec = StoredSpec.from_json(spec_text)
        except InvalidInput as exc:
            raise InvalidInput(f"the stored run spec cannot be read: {exc}") from None
        config, template = self._prepare(dataclasses.replace(spec.config, run_id=run_id), spec.prompt_template)
        upload: tuple[str, list[dict[str, Any]]] | None = None
        if spec.dataset.upload_sha256:
            stored = await self.store.load_upload(spec.dataset.upload_sha256)
            if stored is None:
                raise ConfigConflict(f"upload {spec.dataset.upload_sha256} is missing from the store")
            upload = (stored[0], await asyncio.to_thread(json.loads, stored[1]))
        if run_id in self._active:
            return  # already running (resumed or started meanwhile)
        active = self._reserve(run_id, config)
        try:
            loaded = await asyncio.to_thread(self._load, config, template, spec.dataset.name, upload)
            active.hash = loaded.hash
            active.identified.set()
            await self._launch(active, config, loaded.dataset, template, None)
        except BaseException:
            if active.task is None:
                self._release(run_id, active)
            raise

    # --- reading ----------------------------------------------------------------------------
    async def get(self, run_id: str) -> RunRecord:
        active = self._active.get(run_id)
        if active is not None and (snap := active.snapshot()) is not None:
            return snap
        return await self.store.get_run(run_id)

    async def list(self) -> builtins.list[RunRecord]:
        runs = await self.store.list_runs()
        return [self._active[r.id].snapshot() or r if r.id in self._active else r for r in runs]

    async def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool) -> builtins.list[LeaderboardRow]:
        return await self.store.leaderboard(run_ids, include_incomplete)

    async def export_pages(self, run_id: str, page_size: int = 5000) -> AsyncIterator[builtins.list[tuple[Any, ...]]]:
        """A run's export rows page by page (one store call per page, so writers are never held up long)."""
        await self.store.get_run(run_id)
        after: tuple[str, str, int] | None = None
        while True:
            page = await self.store.export_page(run_id, after, page_size)
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            last = page[-1]
            after = (last[0], last[1], last[3])

    async def watch(self, run_id: str) -> AsyncIterator[tuple[RunRecord, float]]:
        """Progress snapshots while the run is active (≤ 10/s, only on change), then the final record."""
        active = self._active.get(run_id)
        if active is None:
            yield await self.get(run_id), 0.0
            return
        await active.started.wait()
        last: tuple[int, int, str] | None = None
        while not active.finished.is_set():
            snap = active.snapshot()
            if snap is not None and (snap.done, snap.failed, snap.status) != last:
                last = (snap.done, snap.failed, snap.status)
                yield snap, active.rate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.finished.wait(), WATCH_INTERVAL)
        final = await self.store.get_run(run_id)
        yield final, active.rate()

    # --- stopping ---------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> RunRecord:
        active = self._active.get(run_id)
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
        tasks = [a.task for a in self._active.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _log_outcome(task: asyncio.Task[RunRecord]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, AnesbenchError):
        log.error("run task %s crashed", task.get_name(), exc_info=error)
