"""InferenceServices through the official ``kubernetes`` client, every call in a worker thread.

A watch lasts at most ``WATCH_SLICE`` seconds (enforced by the API server and by the client's read
timeout), so that a cancelled wait never leaves a thread blocked for long.
Configuration: in-cluster (the pod's ServiceAccount) when available, else ``KUBECONFIG``/~/.kube/config.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from anesbench.errors import AnesbenchError, InvalidInput, KubeApiError, NotFound, PermissionDenied

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
Obj = dict[str, Any]  # an object as the API returns it (the kserve SDK's models would be a heavy import)
WATCH_SLICE = 10.0  # seconds one watch request lasts at most
REQUEST_TIMEOUT = 30.0  # seconds of one GET/LIST/PATCH
T = TypeVar("T")


def _api_client() -> Any:
    from kubernetes import client, config

    try:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        log.info("kubernetes: in-cluster configuration")
        return client.ApiClient(configuration)
    except config.ConfigException:
        pass
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
    """get/list/watch/patch of ``inferenceservices`` in one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._custom: Any = None

    async def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """``fn(CustomObjectsApi)`` in a worker thread, its failures as our errors."""
        if self._custom is None:
            from kubernetes import client

            self._custom = client.CustomObjectsApi(_api_client())
        api = self._custom

        def guarded() -> T:
            try:
                return fn(api)
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
                        code = obj.get("code") if isinstance(obj, dict) else None
                        if code == 410:
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
