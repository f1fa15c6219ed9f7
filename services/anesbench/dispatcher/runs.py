"""The dispatcher's runs, independent of gRPC: start (or join, or resume) them, follow, cancel, drain.

The dispatcher is the only writer of its DuckDB file. Each run is an asyncio task executing the
shared engine, launched by one path whatever its endpoint: a URL, or an InferenceService (started on
demand, then waited for). After a restart, unfinished runs resume by themselves from the specs kept
in the store (:mod:`~anesbench.dispatcher.specs`), and a spec that cannot be read fails that run
alone, with the reason.

How many requests a run keeps in flight (:func:`settle`): the concurrency it gives, else for each
endpoint that reports its slots (:func:`anesbench.inference.sizing.server_slots`) those slots plus a
short queue, and for one that does not ``unknown_slots`` when given (the run is then fixed at the
sum), else :data:`MAX_LIMIT`, the engine's adaptive limiter sizing the run and its share only capping
it. Runs on one endpoint share it fairly (:class:`EndpointShares`) from join to leave.

Between looking a run id up in the registry and claiming it nothing yields, so two concurrent starts
with one id make one run (the second joins it, or gets ConfigConflict when its spec differs).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from anesbench.dataset import Dataset
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.specs import Loaded, StoredSpec, Upload, load, read_upload
from anesbench.engine.config import DEFAULT_CONCURRENCY, RunConfig, check_run, new_run_id, probe_endpoints, run_record
from anesbench.engine.progress import RunProgress
from anesbench.engine.regrade import regrade_run
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, ConfigConflict, Draining, InvalidInput, PermissionDenied, QuotaExceeded
from anesbench.grader import Grader
from anesbench.inference.endpoint import check_allowed, refuse_url_credentials, validate_endpoint
from anesbench.inference.sizing import MAX_LIMIT, headroom, server_slots
from anesbench.inference.transport import HttpOptions
from anesbench.kube.pool import ModelPool
from anesbench.limiter import DynamicLimiter
from anesbench.prompts import PromptTemplate
from anesbench.store import RunRecord, Store
from anesbench.store.async_store import AsyncStore
from anesbench.store.retention import check_budget

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.1


@dataclass(slots=True)
class ActiveRun:
    """A run id taken by this dispatcher, from the moment a start claims it until the run's task ends (or
    its start fails): a second start with that id finds it and joins."""

    config: RunConfig
    hash: str  # config_hash: a start with the same id must match it
    task: asyncio.Task[RunRecord] | None = None
    record: RunRecord | None = None
    progress: RunProgress | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    initial_done: int = 0

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


class Runs:
    """Every run of this dispatcher: the registry of the active ones by id, and what changes or reads them."""

    def __init__(self, store: AsyncStore, grader: Grader, settings: DispatcherSettings,
                 models: ModelPool | None) -> None:
        self.store = store
        self.grader = grader
        self.settings = settings
        self.models = models  # InferenceServices, with --kube-namespace
        self.shares = EndpointShares()
        self.draining = False
        self._active: dict[str, ActiveRun] = {}

    # --- starting ---------------------------------------------------------------------------
    async def start(
        self, config: RunConfig, prompt_template: str | None, *, dataset_name: str | None = None,
        upload: Upload | None = None,
    ) -> RunRecord:
        """Validate everything, then start (or join, or resume) the run and return its record."""
        if self.draining:
            raise Draining("the dispatcher is shutting down; retry shortly")
        config, template = self._validate(config, prompt_template)
        run_id = config.run_id or new_run_id(config.model, upload[0] if upload is not None else dataset_name or "")
        config = dataclasses.replace(config, run_id=run_id)
        loaded = await asyncio.to_thread(load, self.settings.datasets_dir, config, template, dataset_name, upload)
        if (other := self._active.get(run_id)) is not None:
            # The id is taken (starting or running): the same spec joins that run, another one is refused.
            if other.hash != loaded.hash:
                raise ConfigConflict("a run with that id is active with a different configuration", field="run_id")
            await other.started.wait()
            return other.snapshot() or await self.get(run_id)
        with self._claim(config, loaded.hash) as active:  # no await since the lookup above: the id is ours
            existing = await self.store.call(Store.find_run, run_id)
            if existing is not None and existing.status == "completed" and existing.config_hash == loaded.hash:
                self._release(active)
                return existing
            await probe_endpoints(config, api_key=self.settings.key_for(config.endpoints), http=HttpOptions(),
                                  report=lambda line: log.warning("run %s: %s", run_id, line))
            # Before anything is stored: the upload within --max-upload-bytes, the store within --store-budget-bytes.
            size = len(loaded.upload_text.encode()) if loaded.upload_text is not None else 0
            if self.settings.max_upload_bytes and size > self.settings.max_upload_bytes:
                raise QuotaExceeded(f"the dataset takes {size} bytes, more than this dispatcher accepts "
                                    f"({self.settings.max_upload_bytes}, its {{max_upload_bytes}})", field="upload",
                                    mentions=("max_upload_bytes",))
            check_budget(self.settings.db, self.settings.store_budget_bytes, size)
            if loaded.upload_text is not None:  # a named dataset stays in --datasets-dir
                await self.store.call(Store.save_upload, loaded.dataset.sha256, loaded.dataset.name,
                                      loaded.upload_text)
            spec = StoredSpec(config, prompt_template or None, loaded.ref).to_json()
            return await self._launch(active, loaded.dataset, template, spec)

    async def _from_spec(self, run_id: str, spec_text: str) -> tuple[RunConfig, PromptTemplate, Loaded]:
        """A run of this dispatcher as its stored spec gives it, validated again, with its dataset."""
        spec = StoredSpec.from_json(spec_text)
        config, template = self._validate(dataclasses.replace(spec.config, run_id=run_id), spec.prompt_template)
        upload = await read_upload(self.store, spec.dataset)
        return config, template, await asyncio.to_thread(load, self.settings.datasets_dir, config, template,
                                                         spec.dataset.name, upload)

    def _validate(self, config: RunConfig, prompt_template: str | None) -> tuple[RunConfig, PromptTemplate]:
        """The run as this dispatcher will execute it: an InferenceService in its namespace, endpoints valid
        and allowed (--allow-endpoint), one API key for all of them, then the checks every run passes."""
        if config.inference_service:
            config = check_model_run(self.models, config, self.settings.allowed_inference_services)
        endpoints = tuple(validate_endpoint(url) for url in config.endpoints)
        refuse_url_credentials(endpoints)
        for url in endpoints:
            check_allowed(url, self.settings.allowed_endpoints)
        config = dataclasses.replace(config, endpoints=endpoints)
        # key_for refuses runs mixing keys; HttpOptions() reads the dispatcher's environment
        template = check_run(config, prompt_template, api_key=self.settings.key_for(endpoints), http=HttpOptions(),
                             allow_files=False)
        return config, template

    async def _launch(self, active: ActiveRun, dataset: Dataset, template: PromptTemplate, spec: str | None) -> RunRecord:
        """Start the run's task on a claimed id and return once the run has begun (or failed to).

        A run on an InferenceService is recorded at once and reported PENDING while its model is started
        and waited for; if that fails (not Ready before the deadline, say) the run FAILS with the cause."""
        config = active.config
        run_id = config.run_id or ""
        held: contextlib.AbstractAsyncContextManager[str] = contextlib.nullcontext("")  # the endpoints as given
        if config.inference_service:  # its URL once Ready, and held so while the run needs it
            assert self.models is not None  # _validate refused the run otherwise
            held = self.models.hold(config.inference_service, run_id)
            record = await self.store.call(Store.begin_run, run_record(run_id, config, dataset, template))
            active.record = dataclasses.replace(record, status="pending", started_at=None)
            active.started.set()

        async def execute() -> RunRecord:
            running = False
            try:
                if spec is not None:
                    await self.store.call(Store.save_spec, run_id, spec)
                async with held as url:
                    resolved, unknown = config, None
                    if url:  # a model that does not report its slots gets a fixed concurrency, not the adaptive limiter
                        resolved = dataclasses.replace(config, endpoints=(url,), inference_service=None, namespace=None)
                        unknown = DEFAULT_CONCURRENCY
                    api_key = self.settings.key_for(resolved.endpoints)
                    sized, wanted = await settle(resolved, api_key, unknown_slots=unknown)
                    running = True
                    try:
                        return await execute_run(
                            sized, dataset, template, self.store, self.grader, api_key=api_key,
                            # a drain leaves the run 'running' so the next dispatcher resumes it; cancel() marks it
                            observer=active, status_on_cancel=None, limiter=self.shares.join(sized.endpoint, run_id, wanted),
                        )
                    finally:
                        self.shares.leave(sized.endpoint, run_id)
            except AnesbenchError as exc:
                if running or not config.inference_service:
                    raise
                log.error("run %s: %s", run_id, exc)
                final = active.record = await self.store.call(Store.finish_run, run_id, "failed", str(exc))
                return final
            finally:
                self._release(active)

        task = active.task = asyncio.create_task(execute(), name=f"run-{run_id}")
        task.add_done_callback(_log_outcome)  # a crash that is not one of ours is logged with its traceback
        if not active.started.is_set():
            await asyncio.wait({task, asyncio.ensure_future(active.started.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return active.snapshot() or await self.get(run_id)

    # --- resuming ---------------------------------------------------------------------------
    async def resume_unfinished(self) -> list[str]:
        """Restart the unfinished runs this dispatcher started (it keeps their specs); returns their ids.
        A run whose spec cannot be read, or whose dataset is gone, is marked failed with the reason."""
        resumed: list[str] = []
        for run in await self.store.call(Store.unfinished_runs):
            spec_text = await self.store.call(Store.load_spec, run.id)
            if spec_text is None:
                continue
            try:
                config, template, loaded = await self._from_spec(run.id, spec_text)
                if run.id not in self._active:  # else it is running already (resumed or started meanwhile)
                    with self._claim(config, loaded.hash) as active:
                        await self._launch(active, loaded.dataset, template, None)
                resumed.append(run.id)
            except Exception as exc:  # this run alone fails; a bug is logged with its traceback
                reason = str(exc) if isinstance(exc, AnesbenchError) else f"{type(exc).__name__}: {exc}"
                log.error("cannot resume run %s: %s", run.id, reason, exc_info=not isinstance(exc, AnesbenchError))
                await self.store.call(Store.finish_run, run.id, "failed", f"resume failed: {reason}")
        return resumed

    async def regrade(self, run_id: str, new_id: str | None) -> RunRecord:
        """A completed run of this dispatcher graded again by its grader, on the dataset it ran."""
        await self.store.call(Store.get_run, run_id)  # NotFound before anything else
        spec_text = await self.store.call(Store.load_spec, run_id)
        if spec_text is None:
            raise InvalidInput(f"run {run_id!r} was not started by this dispatcher, which keeps no dataset for it; "
                               "regrade it on its own store file", field="run_id")
        _, _, loaded = await self._from_spec(run_id, spec_text)
        return await regrade_run(self.store, self.grader, loaded.dataset, run_id, new_id)

    # --- stopping ---------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> RunRecord:
        active = self._active.get(run_id)
        if active is not None and active.task is not None:
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        run = await self.store.call(Store.get_run, run_id)
        if run.status == "running" or (active is None and run.status == "pending"):
            run = await self.store.call(Store.finish_run, run_id, "cancelled", None)
        return run

    async def drain(self) -> None:
        """Stop every run where it is; finished results are flushed and the runs stay resumable."""
        self.draining = True
        tasks = [active.task for active in self._active.values() if active.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- reading ----------------------------------------------------------------------------
    def _live(self, run_id: str) -> RunRecord | None:
        """The record of an active run with its progress so far; None if it is not active (or not begun)."""
        active = self._active.get(run_id)
        return active.snapshot() if active is not None else None

    async def get(self, run_id: str) -> RunRecord:
        """The run's record: live while it is active, else what the store holds (NotFound if nothing)."""
        live = self._live(run_id)
        return live if live is not None else await self.store.call(Store.get_run, run_id)

    async def list(self) -> builtins.list[RunRecord]:
        return [self._live(run.id) or run for run in await self.store.call(Store.list_runs)]

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
        yield await self.store.call(Store.get_run, run_id), active.rate()

    # --- the registry -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _claim(self, config: RunConfig, config_hash: str) -> Iterator[ActiveRun]:
        """Take the run's id at once (no ``await`` in here); if the block fails before the run's task
        exists, the id is freed again and its waiters woken."""
        active = self._active[config.run_id or ""] = ActiveRun(config, config_hash)
        try:
            yield active
        except BaseException:
            if active.task is None:
                self._release(active)
            raise

    def _release(self, active: ActiveRun) -> None:
        """Free the id and wake everyone waiting on the run (it ended, or it never started)."""
        if self._active.get(active.config.run_id or "") is active:
            del self._active[active.config.run_id or ""]
        active.started.set()
        active.finished.set()


class EndpointShares:
    """Each endpoint has a capacity (the largest concurrency any of its runs asked for); n runs get 1/n each."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, tuple[DynamicLimiter, int]]] = defaultdict(dict)

    def join(self, endpoint: str, run_id: str, concurrency: int) -> DynamicLimiter:
        limiter = DynamicLimiter(concurrency)
        self._runs[endpoint][run_id] = (limiter, concurrency)
        self._rebalance(endpoint)
        return limiter

    def leave(self, endpoint: str, run_id: str) -> None:
        self._runs[endpoint].pop(run_id, None)
        if self._runs[endpoint]:
            self._rebalance(endpoint)
        else:
            del self._runs[endpoint]

    def _rebalance(self, endpoint: str) -> None:
        # Water-filling: runs that want less than an equal share keep what they want, the rest is split.
        runs = sorted(self._runs[endpoint].values(), key=lambda entry: entry[1])
        remaining = max(wanted for _, wanted in runs)
        for index, (limiter, wanted) in enumerate(runs):
            share = max(1, min(wanted, remaining // (len(runs) - index)))
            limiter.set_limit(share)
            remaining = max(remaining - share, 0)


async def settle(config: RunConfig, api_key: str | None, *, unknown_slots: int | None = None) -> tuple[RunConfig, int]:
    """The run's config with its concurrency settled (unless the adaptive limiter sizes it), and the
    concurrency it wants of its endpoint's share."""
    if config.concurrency is not None:
        return config, config.concurrency
    found = await asyncio.gather(*(server_slots(url, api_key) for url in config.endpoints))
    unknown = MAX_LIMIT if unknown_slots is None else unknown_slots
    wanted = sum(n + headroom(n) if n else unknown for n in found)
    if unknown_slots is not None or all(found):
        return dataclasses.replace(config, concurrency=wanted), wanted
    return config, wanted


def check_model_run(pool: ModelPool | None, config: RunConfig, allowed: tuple[str, ...]) -> RunConfig:
    """Validate a run naming an InferenceService (one of ``allowed``, when given); returns it with the
    namespace filled in."""
    if pool is None:
        raise InvalidInput(f"{config.inference_service}: this dispatcher does not drive InferenceServices (start it "
                           "with {kube_namespace})", field="inference_service", mentions=("kube_namespace",))
    if allowed and config.inference_service not in allowed:
        raise PermissionDenied(f"{config.inference_service}: not an InferenceService this dispatcher may drive; "
                               f"allowed: {', '.join(allowed)} ({{allow_inference_service}})",
                               field="inference_service", mentions=("allow_inference_service",))
    namespace = config.namespace or pool.namespace
    if namespace != pool.namespace:
        raise PermissionDenied(f"{namespace}: this dispatcher drives InferenceServices in namespace {pool.namespace} "
                               "only", field="namespace")
    return dataclasses.replace(config, namespace=namespace)


def _log_outcome(task: asyncio.Task[RunRecord]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, AnesbenchError):
        log.error("run task %s crashed", task.get_name(), exc_info=error)
