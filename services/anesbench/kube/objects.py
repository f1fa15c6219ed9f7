"""The parts of a KServe ``serving.kserve.io/v1beta1`` InferenceService the dispatcher reads and writes.

Plain dicts as the Kubernetes API returns them: the ``kserve`` SDK's models would add a heavy
import for three fields (see docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from anesbench.inference.endpoint import check_allowed

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
# KServe >= 0.15: an InferenceService with this annotation "true" keeps its spec but runs no pods.
STOP_ANNOTATION = "serving.kserve.io/stop"
# Set by the dispatcher on models it started, so that a restarted dispatcher still stops them.
STARTED_BY_ANNOTATION = "anesbench.io/started-by"
# Set by the chart on models with `onDemand: true`: the dispatcher may start and stop them.
ON_DEMAND_LABEL = "anesbench.io/on-demand"
# The served model name (the chart's entry name), used as the `model` label of metrics.
MODEL_LABEL = "anesbench.io/model"

Obj = dict[str, Any]


def name_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def labels(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def model_label(obj: Obj) -> str:
    return labels(obj).get(MODEL_LABEL) or name_of(obj)


def is_on_demand(obj: Obj) -> bool:
    return labels(obj).get(ON_DEMAND_LABEL) == "true"


def is_stopped(obj: Obj) -> bool:
    return annotations_of(obj).get(STOP_ANNOTATION, "").lower() == "true"


def started_by(obj: Obj) -> str | None:
    return annotations_of(obj).get(STARTED_BY_ANNOTATION)


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_ready(obj: Obj) -> bool:
    cond = condition(obj, "Ready")
    return cond is not None and cond.get("status") == "True" and not is_stopped(obj)


def not_ready_reason(obj: Obj) -> str:
    """Why the object is not Ready, from its Ready condition (what `kubectl describe` would show)."""
    if is_stopped(obj):
        return f"stopped ({STOP_ANNOTATION}: \"true\")"
    cond = condition(obj, "Ready")
    if cond is None:
        return "no Ready condition yet"
    parts = [f"Ready={cond.get('status', '?')}"]
    if cond.get("reason"):
        parts.append(f"reason {cond['reason']}")
    if cond.get("message"):
        parts.append(str(cond["message"])[:300])
    return ", ".join(parts)


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
    the dispatcher's requests (and API keys) elsewhere.

    >>> check_status_url("http://m-predictor.ns.svc.cluster.local/v1", "ns", ())
    >>> check_status_url("http://evil.example/v1", "ns", ("http://x.ns.svc/v1",))
    Traceback (most recent call last):
    anesbench.errors.PermissionDenied: endpoint http://evil.example/v1 does not match any allowed endpoint prefix
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host.endswith(f".{namespace}.svc") or f".{namespace}.svc." in host
    if local and parts.username is None and parts.scheme in ("http", "https"):
        return
    check_allowed(url, allowed_prefixes)


def start_patch(owner: str) -> Obj:
    """JSON merge patch that starts a stopped model and marks it as ours."""
    return {"metadata": {"annotations": {STOP_ANNOTATION: None, STARTED_BY_ANNOTATION: owner}}}


def stop_patch() -> Obj:
    """JSON merge patch that stops a model again and removes our mark."""
    return {"metadata": {"annotations": {STOP_ANNOTATION: "true", STARTED_BY_ANNOTATION: None}}}
