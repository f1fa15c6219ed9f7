"""Runs on an InferenceService: the dispatcher's hook into anesbench.kube.

``RunManager`` calls :func:`model_pool` once, its validation :func:`check_model_run` for a run that
names an InferenceService, and its lifecycle :func:`launch_model_run` instead of its own launch for such a run.
The run is recorded at once and reported PENDING while its model is started (on demand) and waited
for; it then runs like any other on the URL the InferenceService's status gives. If the model does
not become Ready before the deadline the run FAILS with that cause.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from anesbench.dataset import Dataset
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.engine.config import DEFAULT_CONCURRENCY, RunConfig, run_record
from anesbench.engine.runner import execute_run
from anesbench.errors import AnesbenchError, InvalidInput, PermissionDenied
from anesbench.kube.objects import check_status_url
from anesbench.prompts import PromptTemplate
from anesbench.store import RunRecord

if TYPE_CHECKING:
    from anesbench.dispatcher.active import ActiveRun
    from anesbench.dispatcher.lifecycle import RunLifecycle
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


async def launch_model_run(runs: RunLifecycle, active: ActiveRun, dataset: Dataset, template: PromptTemplate,
                           spec: str | None) -> RunRecord:
    """Record the run, start its task (hold the model, wait for Ready, execute) and return it PENDING."""
    pool = runs.models
    config = active.config
    name = config.inference_service
    assert pool is not None and name is not None
    run_id = config.run_id or ""
    store = runs.store
    record = await store.begin_run(run_record(run_id, config, dataset, template))
    active.record = dataclasses.replace(record, status="pending", started_at=None)
    active.started.set()

    async def execute() -> RunRecord:
        running = False
        try:
            if spec is not None:
                await runs.persistence.save_spec(run_id, spec)
            async with pool.hold(name, run_id) as url:
                check_status_url(url, pool.namespace, runs.settings.allowed_endpoints)
                resolved = dataclasses.replace(config, endpoints=(url,), inference_service=None, namespace=None)
                # a server that does not report its slots gets a fixed DEFAULT_CONCURRENCY, not the adaptive limiter
                sized, limiter = await runs.sizing.join(run_id, resolved, unknown_slots=DEFAULT_CONCURRENCY)
                running = True
                try:
                    return await execute_run(
                        sized, dataset, template, store, runs.grader,
                        api_key=runs.settings.key_for(resolved.endpoints), observer=active, status_on_cancel=None,
                        limiter=limiter,
                    )
                finally:
                    runs.sizing.leave(run_id, resolved)
        except AnesbenchError as exc:
            if running:
                raise
            log.error("run %s: %s", run_id, exc)
            final = await store.finish_run(run_id, "failed", str(exc))
            active.record = final
            return final
        finally:
            runs.runs.release(run_id, active)

    active.begin(execute())
    return active.snapshot() or record
