"""The dispatcher's runs, independent of gRPC: start (or join, or resume) them, follow, cancel, drain;
and the dispatcher's settings (:class:`DispatcherSettings`, built once from its command line).

The dispatcher is the only writer of its DuckDB file. Each run is an asyncio task executing the
shared engine, launched by one path whatever its endpoint: a URL, or an InferenceService (started on
demand, then waited for). After a restart, unfinished runs resume by themselves from the specs kept
in the store (:mod:`~anesbench.dispatcher.specs`), and a spec that cannot be read fails that run
alone, with the reason. Runs on one endpoint share it fairly (:class:`EndpointShares`).

Between looking a run id up in the registry and claiming it nothing yields, so two concurrent starts
with one id make one run (the second joins it, or gets ConfigConflict when its spec differs).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from anesbench.dataset import Dataset
from anesbench.dispatcher.specs import DatasetRef, StoredSpec, Upload, load
from anesbench.engine.config import (
    DEFAULT_CONCURRENCY,
    RunConfig,
    check_run,
    config_hash,
    new_run_id,
    probe_endpoints,
    run_record,
)
from anesbench.engine.progress import RunProgress
from anesbench.engine.regrade import regrade_run
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, ConfigConflict, Draining, InvalidInput, PermissionDenied, QuotaExceeded
from anesbench.grader import Grader
from anesbench.inference.endpoint import check_allowed, matches_prefix, refuse_url_credentials, validate_endpoint
from anesbench.inference.sizing import MAX_LIMIT, headroom, server_slots
from anesbench.inference.transport import HttpOptions
from anesbench.kube import ModelPool
from anesbench.limiter import DynamicLimiter
from anesbench.prompts import PromptTemplate
from anesbench.serving.security import ClientTls, ServerTls
from anesbench.store import RunRecord, Store
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import check_budget

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.1
# The options of `anesbench serve dispatcher` by their own names (cli/serve_cmd.py defines them; a test
# checks the two agree). An error raised in the dispatcher that mentions one, as ``{datasets_dir}``, gets
# the option written into its message by the dispatcher's edge (server.py), not by a client.
SERVE_OPTIONS = frozenset({
    "host", "port", "grader", "db", "metrics_port", "datasets_dir", "allow_endpoint", "api_key_file",
    "grader_connections", "endpoint_key_file", "auth_token_file", "read_token_file", "health_port",
    "tls_cert", "tls_key", "tls_client_ca", "allow_inference_service", "max_upload_bytes",
    "store_budget_bytes", "grader_ca", "grader_cert", "grader_key", "grader_token_file", "kube_namespace",
    "instance_name", "gpu_budget", "model_idle_seconds", "ready_timeout", "grader_grace",
})


def serve_option(name: str) -> str | None:
    """A setting of this dispatcher as its command line spells it; None for any other name."""
    return "--" + name.replace("_", "-") if name in SERVE_OPTIONS else None


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    host: str
    port: int
    grader: str  # HOST:PORT of the grader service
    db: str
    metrics_port: int | None = None
    datasets_dir: str | None = None
    allowed_endpoints: tuple[str, ...] = ()  # URL prefixes; empty = loopback only
    api_key: str | None = None  # from the dispatcher's environment or a file, never from a request
    # (URL prefix, key): a key sent only to endpoints under its prefix (--endpoint-key-file)
    endpoint_keys: tuple[tuple[str, str], ...] = ()
    grace_seconds: float = 10.0
    grader_connections: int = 4  # connections to the grader Service (so its replicas share the work)
    grader_grace: float = 120.0  # seconds a grade request is re-sent while the grader is down; then its run fails
    # InferenceServices (anesbench.kube): enabled by a namespace; runs may name objects in it only.
    kube_namespace: str | None = None
    kube_owner: str = "anesbench-dispatcher"  # value of anesbench.io/started-by on models it starts
    gpu_budget: int = 0  # on-demand models up at once; 0 = unlimited
    model_idle_seconds: float = 300.0  # grace period before an unneeded on-demand model is stopped
    auth_token: str | None = None  # runner role's bearer token; None = no authentication
    read_token: str | None = None  # reader role's bearer token (reads only)
    tls: ServerTls | None = None  # None: plain text
    health_port: int | None = None  # plain-text grpc.health.v1 only, for kubelet's probes
    grader_tls: ClientTls | None = None  # None: plain text to the grader
    grader_token: str | None = None  # bearer token the grader requires of its callers
    allowed_inference_services: tuple[str, ...] = ()  # names runs may use; empty = any in kube_namespace
    max_upload_bytes: int = 0  # largest dataset upload (canonical JSON); 0 = only the message limit
    store_budget_bytes: int = 0  # the DuckDB file (and WAL) may not grow past this; 0 = no budget
    ready_timeout: float = 1800.0  # seconds a run waits for its InferenceService to become Ready

    def key_for(self, endpoints: Sequence[str]) -> str | None:
        """The API key of a run's endpoints: the longest matching --endpoint-key-file prefix, else the
        dispatcher-wide key. A run whose endpoints need different keys is refused."""
        keys = set()
        for url in endpoints:
            matches = [(len(prefix), key) for prefix, key in self.endpoint_keys if matches_prefix(url, prefix)]
            keys.add(max(matches)[1] if matches else self.api_key)
        if len(keys) > 1:
            raise InvalidInput("the endpoints of one run use different API keys; run them separately", field="endpoints")
        return keys.pop() if keys else self.api_key


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
    initial_done: int = 0

    def snapshot(self) -> RunRecord | None:
        if self.record is None or (p := self.progress) is None:
            return None if self.record is None else dataclasses.replace(self.record)
        return dataclasses.replace(self.record, done=p.done, failed=p.failed, correct=p.correct,
                                   unanswered=p.unanswered)

    def rate(self) -> float:
        if (progress := self.progress) is None or (elapsed := time.monotonic() - progress.started) <= 0:
            return 0.0
        return (progress.done - self.initial_done) / elapsed

    # RunObserver
    def on_start(self, run: RunRecord, progress: RunProgress) -> None:
        self.record, self.progress, self.initial_done = run, progress, progress.done
        self.started.set()

    def on_result(self, row: Any, progress: RunProgress) -> None:
        pass

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None:
        self.record = run


class Runs:
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
        if self.draining:
            raise Draining("the dispatcher is shutting down; retry shortly")
        run_id = config.run_id or new_run_id(config.model, upload[0] if upload is not None else dataset_name or "")
        config, template = self._validate(config, prompt_template, run_id)
        dataset, text = await asyncio.to_thread(load, self.settings.datasets_dir, config, dataset_name, upload)
        run_hash = config_hash(config, dataset, template)
        if (other := self._active.get(run_id)) is not None:
            # The id is taken (starting or running): the same spec joins that run, another one is refused.
            if other.hash != run_hash:
                raise ConfigConflict("a run with that id is active with a different configuration", field="run_id")
            await other.started.wait()
            return other.snapshot() or await self.get(run_id)
        with self._claim(config, run_hash) as active:  # no await since the lookup above: the id is ours
            existing = await self.store.call(Store.find_run, run_id)
            if existing is not None and existing.status == "completed" and existing.config_hash == run_hash:
                self._release(active)
                return existing
            await probe_endpoints(config, api_key=self.settings.key_for(config.endpoints), http=HttpOptions(),
                                  report=lambda line: log.warning("run %s: %s", run_id, line))
            # Before anything is stored: the upload within --max-upload-bytes, the store within --store-budget-bytes.
            size = len(text.encode()) if text is not None else 0
            if self.settings.max_upload_bytes and size > self.settings.max_upload_bytes:
                raise QuotaExceeded(f"the dataset takes {size} bytes, more than this dispatcher accepts "
                                    f"({self.settings.max_upload_bytes}, its {{max_upload_bytes}})", field="upload",
                                    mentions=("max_upload_bytes",))
            check_budget(self.settings.db, self.settings.store_budget_bytes, size)
            if text is not None:  # an upload is kept in the store, a named dataset stays in --datasets-dir
                await self.store.call(Store.save_upload, dataset.sha256, dataset.name, text)
            ref = DatasetRef(upload_sha256=dataset.sha256) if text is not None else DatasetRef(name=dataset_name)
            spec = StoredSpec(config, prompt_template or None, ref).to_json()
            return await self._launch(active, dataset, template, spec)

    async def _from_spec(self, run_id: str, spec_text: str) -> tuple[RunConfig, PromptTemplate, Dataset]:
        spec, upload = StoredSpec.from_json(spec_text), None
        config, template = self._validate(spec.config, spec.prompt_template, run_id)
        if sha := spec.dataset.upload_sha256:  # the upload as it was sent
            if (stored := await self.store.call(Store.load_upload, sha)) is None:
                raise ConfigConflict(f"upload {sha} is missing from the store")
            upload = stored[0], await asyncio.to_thread(json.loads, stored[1])
        dataset, _ = await asyncio.to_thread(load, self.settings.datasets_dir, config, spec.dataset.name, upload)
        return config, template, dataset

    def _validate(self, config: RunConfig, prompt_template: str | None,
                  run_id: str) -> tuple[RunConfig, PromptTemplate]:
        """The run as this dispatcher will execute it: an InferenceService in its namespace, endpoints valid
        and allowed (--allow-endpoint), one API key for all of them, then the checks every run passes."""
        if config.inference_service:
            config = check_model_run(self.models, config, self.settings.allowed_inference_services)
        endpoints = tuple(validate_endpoint(url) for url in config.endpoints)
        refuse_url_credentials(endpoints)
        for url in endpoints:
            check_allowed(url, self.settings.allowed_endpoints)
        config = dataclasses.replace(config, endpoints=endpoints, run_id=run_id)
        # key_for refuses runs mixing keys; HttpOptions() reads the dispatcher's environment
        template = check_run(config, prompt_template, api_key=self.settings.key_for(endpoints), http=HttpOptions(),
                             allow_files=False)
        return config, template

    async def _launch(self, active: ActiveRun, dataset: Dataset, template: PromptTemplate, spec: str | None) -> RunRecord:
        """Start the run's task on a claimed id and return once it has begun (or failed to). A run on an
        InferenceService is recorded at once and reported PENDING while its model is started and waited
        for; if that fails (not Ready before the deadline, say) the run FAILS with the cause."""
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
            except Exception:  # a crash that is not one of ours is logged with its traceback
                log.exception("run task run-%s crashed", run_id)
                raise
            finally:
                self._release(active)

        task = active.task = asyncio.create_task(execute(), name=f"run-{run_id}")
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: execute() logged it
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
                config, template, dataset = await self._from_spec(run.id, spec_text)
                if run.id not in self._active:  # else it is running already (resumed or started meanwhile)
                    with self._claim(config, config_hash(config, dataset, template)) as active:
                        await self._launch(active, dataset, template, None)
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
        _, _, dataset = await self._from_spec(run_id, spec_text)
        return await regrade_run(self.store, self.grader, dataset, run_id, new_id)

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
        if active is not None:
            await active.started.wait()
        last: tuple[int, int, str] | None = None
        while active is not None and (task := active.task) is not None and not task.done():
            snap = active.snapshot()
            if snap is not None and (snap.done, snap.failed, snap.status) != last:
                last = (snap.done, snap.failed, snap.status)
                yield snap, active.rate()
            await asyncio.wait({task}, timeout=WATCH_INTERVAL)
        yield await self.store.call(Store.get_run, run_id), active.rate() if active is not None else 0.0

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
    """The run's config with its concurrency settled, and the concurrency it wants of its endpoint's share:
    the concurrency it gives, else for each endpoint that reports its slots (:func:`server_slots`) those
    slots plus a short queue, and for one that does not ``unknown_slots`` when given (the run is then fixed
    at the sum), else :data:`MAX_LIMIT`, the engine's adaptive limiter sizing the run and its share only
    capping it."""
    if config.concurrency is not None:
        return config, config.concurrency
    found = await asyncio.gather(*(server_slots(url, api_key) for url in config.endpoints))
    unknown = MAX_LIMIT if unknown_slots is None else unknown_slots
    wanted = sum(n + headroom(n) if n else unknown for n in found)
    if unknown_slots is not None or all(found):
        return dataclasses.replace(config, concurrency=wanted), wanted
    return config, wanted


def check_model_run(pool: ModelPool | None, config: RunConfig, allowed: tuple[str, ...]) -> RunConfig:
    """A run naming an InferenceService (one of ``allowed``, when given), with its namespace filled in."""
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
