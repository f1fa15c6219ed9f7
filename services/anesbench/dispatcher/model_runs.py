"""Runs on an InferenceService: the dispatcher's hook into anesbench.kube.

``RunManager`` calls :func:`model_pool` once, :func:`check_model_run` when it validates a run that
names an InferenceService, and :func:`launch_model_run` instead of its own launch for such a run.
The run is recorded at once and reported PENDING while its model is started (on demand) and waited
for; it then runs like any other on the URL the InferenceService's status gives. If the model does
not become Ready before the deadline the run FAILS with that cause.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from anesbench.dataset import Dataset
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.engine.config import DEFAULT_CONCURRENCY, RunConfig, run_record
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, InvalidInput, PermissionDenied
from anesbench.inference.sizing import headroom, server_slots
from anesbench.prompts import PromptTemplate
from anesbench.store import RunRecord

if TYPE_CHECKING:
    from anesbench.dispatcher.manager import ActiveRun, RunManager
    from anesbench.kube.pool import ModelPool

log = logging.getLogger(__name__)


def model_pool(settings: DispatcherSettings) -> ModelPool | None:
    """The pool of InferenceServices, when the dispatcher was given a namespace to drive."""
    if not settings.kube_namespace:
        return None
    from anesbench.kube.api import InferenceServiceApi
    from anesbench.kube.pool import ModelPool

    return ModelPool(InferenceServiceApi(settings.kube_namespace), owner=settings.kube_owner,
                     budget=settings.gpu_budget, grace=settings.model_idle_seconds,
                     ready_timeout=settings.ready_timeout)


def check_model_run(pool: ModelPool | None, config: RunConfig) -> RunConfig:
    """Validate a run naming an InferenceService; returns it with the namespace filled in."""
    if pool is None:
        raise InvalidInput(f"{config.inference_service}: this dispatcher does not drive InferenceServices (start it "
                           "with {kube_namespace})", field="inference_service", mentions=("kube_namespace",))
    namespace = config.namespace or pool.namespace
    if namespace != pool.namespace:
        raise PermissionDenied(f"{namespace}: this dispatcher drives InferenceServices in namespace {pool.namespace} "
                               "only", field="namespace")
    return dataclasses.replace(config, namespace=namespace)


async def _concurrency(config: RunConfig, api_key: str | None) -> int:
    if config.concurrency is not None:
        return config.concurrency
    found = await asyncio.gather(*(server_slots(url, api_key) for url in config.endpoints))
    return sum(n + headroom(n) if n else DEFAULT_CONCURRENCY for n in found)


async def launch_model_run(manager: RunManager, active: ActiveRun, dataset: Dataset, template: PromptTemplate,
                           spec: str | None) -> RunRecord:
    """Record the run, start its task (hold the model, wait for Ready, execute) and return it PENDING."""
    pool = manager.models
    config = active.config
    name = config.inference_service
    assert pool is not None and name is not None
    run_id = config.run_id or ""
    store = manager.store
    record = await store.begin_run(run_record(run_id, config, dataset, template))
    active.record = dataclasses.replace(record, status="pending", started_at=None)
    active.started.set()

    async def execute() -> RunRecord:
        running = False
        try:
            if spec is not None:
                await store.save_spec(run_id, spec)
            async with pool.hold(name, run_id) as url:
                resolved = dataclasses.replace(config, endpoints=(url,), inference_service=None, namespace=None)
                api_key = manager.settings.key_for(resolved.endpoints)
                wanted = await _concurrency(resolved, api_key)
                limiter = manager._shares.join(resolved.endpoint, run_id, wanted)
                running = True
                try:
                    return await execute_run(
                        dataclasses.replace(resolved, concurrency=wanted), dataset, template, store, manager.grader,
                        api_key=api_key, observer=active, status_on_cancel=None, limiter=limiter,
                    )
                finally:
                    manager._shares.leave(resolved.endpoint, run_id)
        except AnesbenchError as exc:
            if running:
                raise
            log.error("run %s: %s", run_id, exc)
            final = await store.finish_run(run_id, "failed", str(exc))
            active.record = final
            return final
        finally:
            manager._release(run_id, active)

    from anesbench.dispatcher.manager import _log_outcome

    active.task = asyncio.create_task(execute(), name=f"run-{run_id}")
    active.task.add_done_callback(_log_outcome)
    return active.snapshot() or record
