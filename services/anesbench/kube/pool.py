"""On-demand models: start an InferenceService when a run needs it, stop it when no run does.

Reference counted across runs: every queued or running run holds its model (``hold``); when the
last one lets go the model is stopped after a grace period (a run arriving meanwhile keeps it up).
At most ``budget`` on-demand models are up at once; a run whose model would exceed it waits in
FIFO order, and an idle model (no run holds it, grace period running) is stopped at once to make
room. Models the dispatcher started carry ``anesbench.io/started-by: <owner>``, so that a restarted
dispatcher (``recover``) adopts them and still stops them. Models not marked on demand, or started
by someone else, are only read and waited for, never started or stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from anesbench import metrics
from anesbench.errors import AnesbenchError, ModelNotReady
from anesbench.kube.api import InferenceServiceApi
from anesbench.kube.objects import (
    ON_DEMAND_LABEL,
    Obj,
    base_url,
    is_on_demand,
    is_ready,
    is_stopped,
    model_label,
    name_of,
    not_ready_reason,
    start_patch,
    started_by,
    stop_patch,
)

log = logging.getLogger(__name__)
RETRY_STOP_SECONDS = 5.0


@dataclass(slots=True)
class _Model:
    name: str  # InferenceService name
    label: str  # served model name (metrics label)
    refs: set[str] = field(default_factory=set)  # run ids holding it
    ours: bool = False  # started by this dispatcher (or adopted on restart): we stop it
    releases: int = 0  # bumped on every release, so that only the latest grace timer may stop it

    def state(self, state: str) -> None:
        metrics.set_model_state(self.label, state)


class ModelPool:
    def __init__(self, api: InferenceServiceApi, *, owner: str, budget: int = 0, grace: float = 300.0,
                 ready_timeout: float = 1800.0) -> None:
        self.api = api
        self.owner = owner
        self.budget = budget  # 0 = unlimited
        self.grace = grace
        self.ready_timeout = ready_timeout
        self._models: dict[str, _Model] = {}
        self._up: dict[str, _Model] = {}  # on-demand models we started: starting, ready or idle in grace
        self._cond = asyncio.Condition()
        self._timers: set[asyncio.Task[None]] = set()

    @property
    def namespace(self) -> str:
        return self.api.namespace

    def _model(self, name: str, obj: Obj | None = None) -> _Model:
        model = self._models.get(name)
        if model is None:
            model = self._models[name] = _Model(name, model_label(obj) if obj else name)
        elif obj is not None:
            model.label = model_label(obj)
        return model

    # --- restart ----------------------------------------------------------------------------
    async def recover(self) -> list[str]:
        """Adopt the on-demand models an earlier run of this dispatcher started and left up."""
        items, _ = await self.api.list(label_selector=f"{ON_DEMAND_LABEL}=true")
        adopted: list[str] = []
        for obj in items:
            model = self._model(name_of(obj), obj)
            if started_by(obj) == self.owner and not is_stopped(obj):
                model.ours = True
                self._up[model.name] = model
                model.state("ready" if is_ready(obj) else "starting")
                adopted.append(model.name)
                self._release_later(model)
            else:
                model.state("stopped" if is_stopped(obj) else "ready")
        metrics.GPU_BUDGET_USED.set(len(self._up))
        if adopted:
            log.info("adopted %d on-demand model(s) started before a restart: %s (stopped after %.0f s unless a "
                     "run needs them)", len(adopted), ", ".join(adopted), self.grace)
        return adopted

    # --- holding ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def hold(self, name: str, run_id: str) -> AsyncIterator[str]:
        """Keep the InferenceService up for the block; yields its OpenAI base URL once it is Ready."""
        model = self._model(name)
        model.refs.add(run_id)
        began = time.monotonic()
        try:
            obj = await self.api.get(name)
            model = self._model(name, obj)
            if is_on_demand(obj) and not model.ours:
                if is_stopped(obj) or started_by(obj) == self.owner:
                    await self._start(model, run_id)
                else:
                    log.info("InferenceService %s is on demand but was started by %s: using it, not stopping it",
                             name, started_by(obj) or "someone else")
            # The deadline counts from the start: a run queued behind the GPU budget waits as long as it takes.
            url = await self._wait_ready(model, time.monotonic(), run_id)
            metrics.MODEL_READY_WAIT.labels(model.label).observe(time.monotonic() - began)
            yield url
        finally:
            model.refs.discard(run_id)
            if not model.refs and model.ours:
                self._release_later(model)

    async def _start(self, model: _Model, run_id: str) -> None:
        queued = False
        try:
            async with self._cond:
                while not model.ours and self.budget and len(self._up) >= self.budget:
                    idle = [m for m in self._up.values() if not m.refs]
                    if idle:
                        if not await self._stop(idle[0], f"to make room for {model.name}"):
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._cond.wait(), RETRY_STOP_SECONDS)
                        continue
                    if not queued:
                        queued = True
                        metrics.MODEL_QUEUED_RUNS.labels(model.label).inc()
                        model.state("queued")
                        log.info("run %s: InferenceService %s queued, GPU budget %d in use by %s", run_id,
                                 model.name, self.budget, ", ".join(sorted(self._up)))
                    await self._cond.wait()
                if model.ours:
                    return  # another run started it while this one waited
                model.ours = True
                self._up[model.name] = model
                metrics.GPU_BUDGET_USED.set(len(self._up))
                model.state("starting")
        finally:
            if queued:
                metrics.MODEL_QUEUED_RUNS.labels(model.label).dec()
                if not model.ours:
                    model.state("stopped")  # the run was cancelled while it waited
        try:
            await self.api.patch(model.name, start_patch(self.owner))
        except BaseException:
            async with self._cond:
                self._forget(model)
            raise
        metrics.MODEL_STARTS.labels(model.label).inc()
        log.info("run %s: started InferenceService %s (%d of GPU budget %s up)", run_id, model.name, len(self._up),
                 self.budget or "unlimited")

    async def _wait_ready(self, model: _Model, began: float, run_id: str) -> str:
        deadline = began + self.ready_timeout
        while True:
            obj = await self.api.get(model.name)
            url = base_url(obj)
            if is_ready(obj) and url:
                model.state("ready")
                log.info("run %s: InferenceService %s Ready after %.1f s at %s", run_id, model.name,
                         time.monotonic() - began, url)
                return url
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelNotReady(
                    f"InferenceService {self.namespace}/{model.name} did not become Ready within "
                    f"{self.ready_timeout:.0f} s: {not_ready_reason(obj)}")
            if model.ours:
                model.state("starting")
            version = str(obj.get("metadata", {}).get("resourceVersion", ""))
            await self.api.watch_until(model.name, version, lambda o: is_ready(o) and base_url(o) is not None,
                                       remaining)

    # --- releasing --------------------------------------------------------------------------
    def _release_later(self, model: _Model) -> None:
        model.releases += 1
        timer = asyncio.get_running_loop().create_task(self._stop_after_grace(model, model.releases))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _stop_after_grace(self, model: _Model, release: int) -> None:
        await asyncio.sleep(self.grace)
        async with self._cond:
            if model.refs or not model.ours or model.releases != release:
                return
            if not await self._stop(model, f"no run needs it for {self.grace:.0f} s"):
                self._release_later(model)

    async def _stop(self, model: _Model, why: str) -> bool:
        """Stop a model (the condition is held); False when the API refused, the model then stays counted."""
        model.state("stopping")
        try:
            await self.api.patch(model.name, stop_patch())
        except AnesbenchError as exc:
            log.error("cannot stop InferenceService %s (%s): %s; trying again", model.name, why, exc)
            return False
        self._forget(model)
        log.info("stopped InferenceService %s: %s", model.name, why)
        return True

    def _forget(self, model: _Model) -> None:
        """The model is down (or never came up): its place in the budget is free (the condition is held)."""
        model.ours = False
        self._up.pop(model.name, None)
        metrics.GPU_BUDGET_USED.set(len(self._up))
        model.state("stopped")
        self._cond.notify_all()

    async def close(self) -> None:
        """Forget pending stops (a dispatcher shutting down): the models stay marked, and the next
        dispatcher adopts and stops them."""
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
