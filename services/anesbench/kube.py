"""KServe InferenceServices driven by the dispatcher: read, start, wait for Ready, stop (nothing here is
imported by the CLI or the grader).

:class:`InferenceServiceApi` goes through the official ``kubernetes`` client, every call in a worker
thread. A watch lasts at most ``WATCH_SLICE`` seconds (enforced by the API server and by the client's
read timeout), so that a cancelled wait never leaves a thread blocked for long. Configuration:
in-cluster (the pod's ServiceAccount) when available, else ``KUBECONFIG``/~/.kube/config.

:class:`ModelPool` starts an on-demand model when a run needs it and stops it when no run does,
reference counted across runs: every queued or running run holds its model (``hold``); when the
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
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from anesbench import metrics
from anesbench.errors import AnesbenchError, InvalidInput, KubeApiError, ModelNotReady, NotFound, PermissionDenied
from anesbench.inference.endpoint import check_allowed

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
Obj = dict[str, Any]  # an object as the API returns it (the kserve SDK's models would be a heavy import)
WATCH_SLICE = 10.0  # seconds one watch request lasts at most
REQUEST_TIMEOUT = 30.0  # seconds of one GET/LIST/PATCH
RETRY_STOP_SECONDS = 5.0
T = TypeVar("T")
# KServe >= 0.15: an InferenceService with this annotation "true" keeps its spec but runs no pods.
STOP_ANNOTATION = "serving.kserve.io/stop"
# Set by the dispatcher on models it started, so that a restarted dispatcher still stops them.
STARTED_BY_ANNOTATION = "anesbench.io/started-by"
# Set by the chart on models with `onDemand: true`: the dispatcher may start and stop them.
ON_DEMAND_LABEL = "anesbench.io/on-demand"
# The served model name (the chart's entry name), used as the `model` label of metrics.
MODEL_LABEL = "anesbench.io/model"


def _api_client() -> Any:
    from kubernetes import client, config

    with contextlib.suppress(config.ConfigException):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        log.info("kubernetes: in-cluster configuration")
        return client.ApiClient(configuration)
    try:
        # KUBECONFIG read now (the client reads it once, at import); a ':'-separated list is merged.
        api_client = config.new_client_from_config(config_file=os.environ.get("KUBECONFIG") or None)
    except (config.ConfigException, OSError) as exc:
        raise InvalidInput(f"kubernetes: no in-cluster configuration and no usable kubeconfig: {exc}") from None
    log.info("kubernetes: kubeconfig, server %s", api_client.configuration.host)
    return api_client


def _translate(exc: Exception, what: str) -> Exception:
    from kubernetes.client.exceptions import ApiException

    if not isinstance(exc, ApiException):
        return KubeApiError(f"{what}: Kubernetes API unreachable: {type(exc).__name__}: {exc}")
    try:
        detail = str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        detail = str(exc.reason)
    if exc.status == 404:
        return NotFound(f"{what}: not found ({detail})")
    if exc.status in (401, 403):
        return PermissionDenied(f"{what}: the Kubernetes API refused access ({exc.status}: {detail})")
    return KubeApiError(f"{what}: Kubernetes API error {exc.status}: {detail}")


class InferenceServiceApi:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._custom: Any = None

    async def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """``fn(CustomObjectsApi)`` in a worker thread, its failures as our errors."""
        if self._custom is None:
            from kubernetes import client

            self._custom = client.CustomObjectsApi(_api_client())

        def guarded() -> T:
            try:
                return fn(self._custom)
            except AnesbenchError:
                raise
            except Exception as exc:  # the client raises ApiException, urllib3 and socket errors
                raise _translate(exc, what) from None

        return await asyncio.to_thread(guarded)

    def _what(self, name: str) -> str:
        return f"InferenceService {self.namespace}/{name}"

    async def get(self, name: str) -> Obj:
        return await self._call(self._what(name), lambda api: api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT))

    async def list(self, label_selector: str = "") -> list[Obj]:
        result = await self._call(f"InferenceServices in {self.namespace}", lambda api: api.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT))
        return list(result.get("items") or [])

    async def patch(self, name: str, merge_patch: Obj) -> Obj:
        """A JSON merge patch (application/merge-patch+json)."""
        return await self._call(self._what(name), lambda api: api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, merge_patch,
            _content_type="application/merge-patch+json", _request_timeout=REQUEST_TIMEOUT))

    async def watch_until(self, name: str, resource_version: str, done: Callable[[Obj], bool], seconds: float) -> None:
        """Watch one object from ``resource_version`` for at most ``seconds``, or until ``done`` holds for it
        (the caller reads it again either way)."""
        from kubernetes import watch

        slice_seconds = max(1, int(min(seconds, WATCH_SLICE)))

        def run(api: Any) -> None:
            watcher = watch.Watch()
            deadline = time.monotonic() + slice_seconds
            try:
                for event in watcher.stream(
                    api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    field_selector=f"metadata.name={name}", resource_version=resource_version,
                    timeout_seconds=slice_seconds, allow_watch_bookmarks=True,
                    _request_timeout=slice_seconds + 5,
                ):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if isinstance(obj, dict) and obj.get("code") == 410:
                            return  # too old: the caller reads the object again
                        raise KubeApiError(f"{self._what(name)}: watch error {obj}")
                    if event.get("type") in ("ADDED", "MODIFIED") and done(obj):
                        return
                    if event.get("type") == "DELETED":
                        raise NotFound(f"{self._what(name)}: deleted while waiting for it")
                    if time.monotonic() > deadline:
                        break
            finally:
                watcher.stop()

        await self._call(self._what(name), run)


def _metadata(obj: Obj, key: str) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get(key) or {})


def is_stopped(obj: Obj) -> bool:
    return _metadata(obj, "annotations").get(STOP_ANNOTATION, "").lower() == "true"


def started_by(obj: Obj) -> str | None:
    return _metadata(obj, "annotations").get(STARTED_BY_ANNOTATION)


def _ready_condition(obj: Obj) -> Obj | None:
    return next((dict(c) for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def is_ready(obj: Obj) -> bool:
    cond = _ready_condition(obj)
    return cond is not None and cond.get("status") == "True" and not is_stopped(obj)


def not_ready_reason(obj: Obj) -> str:
    """Why the object is not Ready, from its Ready condition (what `kubectl describe` would show)."""
    if is_stopped(obj):
        return f"stopped ({STOP_ANNOTATION}: \"true\")"
    cond = _ready_condition(obj)
    if cond is None:
        return "no Ready condition yet"
    parts = (f"Ready={cond.get('status', '?')}", f"reason {cond['reason']}" if cond.get("reason") else "",
             str(cond.get("message") or "")[:300])
    return ", ".join(filter(None, parts))


def base_url(obj: Obj) -> str | None:
    """The OpenAI base URL of a Ready InferenceService: the cluster-local address first (the dispatcher
    runs in the cluster; status.url may be an ingress host), then status.url; "/v1" appended as the
    SGLang runtime serves the OpenAI routes there."""
    status = obj.get("status") or {}
    url = (status.get("address") or {}).get("url") or status.get("url")
    if not url:
        return None
    url = str(url).rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def check_status_url(url: str, namespace: str, allowed_prefixes: Sequence[str]) -> None:
    """The URL an InferenceService's status gives must be a cluster-local address in its namespace, or
    one the dispatcher allows anyway: whoever can write the object's status must not be able to send
    the dispatcher's requests (and API keys) elsewhere."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host.endswith(f".{namespace}.svc") or f".{namespace}.svc." in host
    if local and parts.username is None and parts.scheme in ("http", "https"):
        return
    check_allowed(url, allowed_prefixes)


def start_patch(owner: str) -> Obj:  # a JSON merge patch: started, and marked as ours
    return {"metadata": {"annotations": {STOP_ANNOTATION: None, STARTED_BY_ANNOTATION: owner}}}


@dataclass(slots=True)
class _Model:
    name: str  # InferenceService name
    label: str  # served model name (metrics label)
    refs: set[str] = field(default_factory=set)  # run ids holding it
    releases: int = 0  # bumped on every release, so that only the latest grace timer may stop it

    def state(self, state: str) -> None:
        metrics.set_model_state(self.label, state)


class ModelPool:
    def __init__(self, api: InferenceServiceApi, *, owner: str, budget: int = 0, grace: float = 300.0,
                 ready_timeout: float = 1800.0, allowed_endpoints: Sequence[str] = ()) -> None:
        self.api = api
        self.namespace = api.namespace
        self.owner = owner
        self.allowed_endpoints = allowed_endpoints  # the status URLs outside the namespace it may yield
        self.budget = budget  # 0 = unlimited
        self.grace = grace
        self.ready_timeout = ready_timeout
        self._models: dict[str, _Model] = {}
        # on-demand models we started (or adopted on restart), starting, ready or idle in grace: we stop them
        self._up: dict[str, _Model] = {}
        self._cond = asyncio.Condition()
        self._timers: set[asyncio.Task[None]] = set()

    def _model(self, name: str, obj: Obj | None = None) -> _Model:
        model = self._models.setdefault(name, _Model(name, name))
        if obj is not None:
            model.label = _metadata(obj, "labels").get(MODEL_LABEL) or name
        return model

    # --- restart ----------------------------------------------------------------------------
    async def recover(self) -> None:
        """Adopt the on-demand models an earlier run of this dispatcher started and left up."""
        adopted: list[str] = []
        for obj in await self.api.list(label_selector=f"{ON_DEMAND_LABEL}=true"):
            model = self._model(str(obj.get("metadata", {}).get("name", "")), obj)
            if started_by(obj) == self.owner and not is_stopped(obj):
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

    # --- holding ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def hold(self, name: str, run_id: str) -> AsyncIterator[str]:
        """Keep the InferenceService up for the block; yields its OpenAI base URL once it is Ready (and
        passes :func:`check_status_url`)."""
        model = self._model(name)
        model.refs.add(run_id)
        began = time.monotonic()
        try:
            obj = await self.api.get(name)
            model = self._model(name, obj)
            if _metadata(obj, "labels").get(ON_DEMAND_LABEL) == "true" and name not in self._up:
                if is_stopped(obj) or started_by(obj) == self.owner:
                    await self._start(model, run_id)
                else:
                    log.info("InferenceService %s is on demand but was started by %s: using it, not stopping it",
                             name, started_by(obj) or "someone else")
            # The deadline counts from the start: a run queued behind the GPU budget waits as long as it takes.
            url = await self._wait_ready(model, time.monotonic(), run_id)
            metrics.MODEL_READY_WAIT.labels(model.label).observe(time.monotonic() - began)
            check_status_url(url, self.namespace, self.allowed_endpoints)
            yield url
        finally:
            model.refs.discard(run_id)
            if not model.refs and name in self._up:
                self._release_later(model)

    async def _start(self, model: _Model, run_id: str) -> None:
        queued = False
        try:
            async with self._cond:
                while model.name not in self._up and self.budget and len(self._up) >= self.budget:
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
                if model.name in self._up:
                    return  # another run started it while this one waited
                self._up[model.name] = model
                metrics.GPU_BUDGET_USED.set(len(self._up))
                model.state("starting")
        finally:
            if queued:
                metrics.MODEL_QUEUED_RUNS.labels(model.label).dec()
                if model.name not in self._up:
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
            if model.name in self._up:
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
            idle = not model.refs and model.name in self._up and model.releases == release
            if idle and not await self._stop(model, f"no run needs it for {self.grace:.0f} s"):
                self._release_later(model)

    async def _stop(self, model: _Model, why: str) -> bool:
        """Stop a model (the condition is held); False when the API refused, the model then stays counted."""
        model.state("stopping")
        try:
            unmarked = {"metadata": {"annotations": {STOP_ANNOTATION: "true", STARTED_BY_ANNOTATION: None}}}
            await self.api.patch(model.name, unmarked)  # stopped again, without our mark
        except AnesbenchError as exc:
            log.error("cannot stop InferenceService %s (%s): %s; trying again", model.name, why, exc)
            return False
        self._forget(model)
        log.info("stopped InferenceService %s: %s", model.name, why)
        return True

    def _forget(self, model: _Model) -> None:
        """The model is down (or never came up): its place in the budget is free (the condition is held)."""
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
