"""The dispatcher's core, independent of gRPC: start, follow, cancel and resume runs.

It is the only writer of the DuckDB file. Each run is an asyncio task executing the shared engine;
runs on one endpoint share its concurrency fairly; after a restart, unfinished runs resume by
themselves from the specs kept in the store.
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
from typing import Any

from anesbench.dataset import Dataset
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.shares import EndpointShares
from anesbench.dispatcher.sources import canonical_records, named_dataset, uploaded_dataset
from anesbench.engine.config import DEFAULT_CONCURRENCY, RunConfig, config_hash, new_run_id
from anesbench.engine.progress import RunProgress
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, ConfigConflict, GraderUnavailable
from anesbench.grader import Grader
from anesbench.inference import validate_endpoint
from anesbench.inference.endpoint import check_allowed
from anesbench.inference.preflight import preflight
from anesbench.inference.sizing import headroom, server_slots
from anesbench.prompts import PromptTemplate, load_template
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore
from anesbench.store.leaderboard_sql import LeaderboardRow

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.1


class Draining(GraderUnavailable):
    """The dispatcher is shutting down and takes no new runs."""


@dataclass(slots=True)
class DatasetRef:
    name: str | None = None  # a dataset in --datasets-dir
    upload_sha256: str | None = None  # an upload kept in the store


@dataclass(slots=True)
class ActiveRun:
    config: RunConfig
    task: asyncio.Task[RunRecord] | None = None
    record: RunRecord | None = None
    progress: RunProgress | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    hash: str = ""
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


class RunManager:
    def __init__(self, store: AsyncStore, grader: Grader, settings: DispatcherSettings) -> None:
        self.store = store
        self.grader = grader
        self.settings = settings
        self.draining = False
        self._active: dict[str, ActiveRun] = {}
        self._shares = EndpointShares()

    # --- starting ---------------------------------------------------------------------------
    def _prepare(self, config: RunConfig, prompt_template: str | None) -> tuple[RunConfig, PromptTemplate]:
        endpoints = tuple(validate_endpoint(url) for url in config.endpoints)
        for url in endpoints:
            check_allowed(url, self.settings.allowed_endpoints)
        template = load_template(prompt_template or None, allow_files=False)
        template.require(config.languages)
        return dataclasses.replace(config, endpoints=endpoints), template

    async def start(
        self, config: RunConfig, prompt_template: str | None, *, dataset_name: str | None = None,
        upload: tuple[str, list[dict[str, Any]]] | None = None,
    ) -> RunRecord:
        """Validate everything, then start (or join, or resume) the run and return its record."""
        if self.draining:
            raise Draining("the dispatcher is shutting down; retry shortly")
        config, template = self._prepare(config, prompt_template)
        if upload is not None:
            name, records = upload
            dataset = uploaded_dataset(name, records, config.languages)
            ref = DatasetRef(upload_sha256=dataset.sha256)
        else:
            dataset = named_dataset(self.settings.datasets_dir, dataset_name or "", config.languages)
            ref = DatasetRef(name=dataset_name)
        run_id = config.run_id or new_run_id(config.model, dataset.name)
        config = dataclasses.replace(config, run_id=run_id)
        wanted = config_hash(config, dataset, template)
        active = self._active.get(run_id)
        if active is not None:
            if active.hash != wanted:
                raise ConfigConflict(f"run_id {run_id}: a run with that id is active with a different configuration")
            await active.started.wait()
            return active.snapshot() or await self.get(run_id)
        existing = await self.store.call(self.store.store.find_run, run_id)
        if existing is not None and existing.status == "completed" and existing.config_hash == wanted:
            return existing
        # The endpoint is up and serves the model before anything is stored (else no run row).
        await preflight(config.endpoints, config.model, api_key=self.settings.api_key, wait_ready=config.wait_ready,
                        report=lambda line: log.warning("run %s: %s", run_id, line))
        if upload is not None:
            text, _ = canonical_records(upload[1])
            await self.store.call(self.store.store.save_upload, dataset.sha256, dataset.name, text)
        spec = {"config": dataclasses.asdict(config), "prompt_template": prompt_template or None,
                "dataset": dataclasses.asdict(ref)}
        return await self._launch(config, dataset, template, wanted, json.dumps(spec))

    async def _launch(
        self, config: RunConfig, dataset: Dataset, template: PromptTemplate, wanted: str, spec: str | None
    ) -> RunRecord:
        run_id = config.run_id or ""
        active = ActiveRun(config=config, hash=wanted)
        self._active[run_id] = active
        wanted_concurrency = config.concurrency
        if wanted_concurrency is None:
            found = await asyncio.gather(*(server_slots(url, self.settings.api_key) for url in config.endpoints))
            wanted_concurrency = sum(n + headroom(n) if n else DEFAULT_CONCURRENCY for n in found)
        limiter = self._shares.join(config.endpoint, run_id, wanted_concurrency)
        capped = dataclasses.replace(config, concurrency=wanted_concurrency)

        async def execute() -> RunRecord:
            try:
                if spec is not None:
                    await self.store.call(self.store.store.save_spec, run_id, spec)
                return await execute_run(
                    capped, dataset, template, self.store, self.grader, api_key=self.settings.api_key,
                    # a drain leaves the run 'running' so the next dispatcher resumes it; cancel() marks it
                    observer=active, status_on_cancel=None,
                    limiter=limiter,
                )
            finally:
                self._shares.leave(config.endpoint, run_id)
                self._active.pop(run_id, None)
                active.finished.set()
                active.started.set()

        active.task = asyncio.create_task(execute(), name=f"run-{run_id}")
        active.task.add_done_callback(_log_outcome)
        await asyncio.wait({active.task, asyncio.ensure_future(active.started.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if active.task.done() and active.task.exception() is not None:
            raise active.task.exception()  # type: ignore[misc]
        return active.snapshot() or await self.get(run_id)

    async def resume_unfinished(self) -> list[str]:
        """Restart every run the store says is unfinished and that this dispatcher started."""
        resumed: list[str] = []
        for run in await self.store.call(self.store.store.unfinished_runs):
            spec_text = await self.store.call(self.store.store.load_spec, run.id)
            if spec_text is None:
                continue  # an embedded run in the same file: not ours to finish
            try:
                spec = json.loads(spec_text)
                saved = spec["config"]
                config = RunConfig(**{**saved, "languages": tuple(saved["languages"]),
                                      "endpoints": tuple(saved["endpoints"])})
                config, template = self._prepare(config, spec["prompt_template"])
                ref = DatasetRef(**spec["dataset"])
                if ref.upload_sha256:
                    upload = await self.store.call(self.store.store.load_upload, ref.upload_sha256)
                    if upload is None:
                        raise ConfigConflict(f"upload {ref.upload_sha256} is missing from the store")
                    dataset = uploaded_dataset(upload[0], json.loads(upload[1]), config.languages)
                else:
                    dataset = named_dataset(self.settings.datasets_dir, ref.name or "", config.languages)
                await self._launch(config, dataset, template, config_hash(config, dataset, template), None)
                resumed.append(run.id)
            except AnesbenchError as exc:
                log.error("cannot resume run %s: %s", run.id, exc)
                await self.store.call(self.store.store.finish_run, run.id, "failed", f"resume failed: {exc}")
        return resumed

    # --- reading ----------------------------------------------------------------------------
    async def get(self, run_id: str) -> RunRecord:
        active = self._active.get(run_id)
        if active is not None and (snap := active.snapshot()) is not None:
            return snap
        return await self.store.call(self.store.store.get_run, run_id)

    async def list(self) -> builtins.list[RunRecord]:
        runs = await self.store.call(self.store.store.list_runs)
        return [self._active[r.id].snapshot() or r if r.id in self._active else r for r in runs]

    async def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool) -> builtins.list[LeaderboardRow]:
        return await self.store.call(self.store.store.leaderboard, run_ids, include_incomplete)

    async def export_pages(self, run_id: str, page_size: int = 5000) -> AsyncIterator[builtins.list[tuple[Any, ...]]]:
        """A run's export rows page by page (one store call per page, so writers are never held up long)."""
        await self.store.call(self.store.store.get_run, run_id)
        after: tuple[str, str, int] | None = None
        while True:
            page = await self.store.call(self.store.store.export_page, run_id, after, page_size)
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
        final = await self.store.call(self.store.store.get_run, run_id)
        yield final, active.rate()

    # --- stopping ---------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> RunRecord:
        active = self._active.get(run_id)
        if active is None:
            run = await self.store.call(self.store.store.get_run, run_id)
            if run.status in ("pending", "running"):
                return await self.store.call(self.store.store.finish_run, run_id, "cancelled", None)
            return run
        if active.task is not None:
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        run = await self.store.call(self.store.store.get_run, run_id)
        if run.status == "running":
            run = await self.store.call(self.store.store.finish_run, run_id, "cancelled", None)
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
