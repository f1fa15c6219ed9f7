"""The runs this dispatcher holds right now: one :class:`ActiveRun` per run id it has taken.

:class:`ActiveRuns` is the registry by id; an entry exists from the moment a start reserves the id
until the run's task ends (or its start fails), so a second start with that id finds it and joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from anesbench.engine.config import RunConfig
from anesbench.engine.progress import RunProgress
from anesbench.errors import AnesbenchError
from anesbench.store import RunRecord
from anesbench.store.async_store import AsyncStore

log = logging.getLogger(__name__)


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

    def identify(self, config_hash: str) -> None:
        """The run's configuration hash is known: a start waiting on this id can now compare its own."""
        self.hash = config_hash
        self.identified.set()

    def begin(self, work: Coroutine[Any, Any, RunRecord]) -> asyncio.Task[RunRecord]:
        """Run ``work`` as this run's task (a crash that is not one of ours is logged with its traceback)."""
        self.task = asyncio.create_task(work, name=f"run-{self.config.run_id}")
        self.task.add_done_callback(_log_outcome)
        return self.task

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


class ActiveRuns:
    """The registry of active runs by id, and the current record of any run (live, else stored)."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._runs: dict[str, ActiveRun] = {}

    def get(self, run_id: str) -> ActiveRun | None:
        return self._runs.get(run_id)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._runs

    def tasks(self) -> list[asyncio.Task[RunRecord]]:
        return [active.task for active in self._runs.values() if active.task is not None]

    @contextlib.contextmanager
    def claim(self, run_id: str, config: RunConfig) -> Iterator[ActiveRun]:
        """Take ``run_id`` at once (no ``await`` in here); if the block fails before the run's task
        exists, the id is freed again and its waiters woken."""
        active = ActiveRun(config=config)
        self._runs[run_id] = active
        try:
            yield active
        except BaseException:
            if active.task is None:
                self.release(run_id, active)
            raise

    def release(self, run_id: str, active: ActiveRun) -> None:
        if self._runs.get(run_id) is active:
            del self._runs[run_id]
        active.release()

    def live(self, run_id: str) -> RunRecord | None:
        """The record of an active run with its progress so far; None if it is not active (or not begun)."""
        active = self._runs.get(run_id)
        return active.snapshot() if active is not None else None

    async def current(self, run_id: str) -> RunRecord:
        """The run's record: live while it is active, else what the store holds (NotFound if nothing)."""
        return self.live(run_id) or await self._store.get_run(run_id)


def _log_outcome(task: asyncio.Task[RunRecord]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, AnesbenchError):
        log.error("run task %s crashed", task.get_name(), exc_info=error)
