"""A stand-in Kubernetes API server for KServe InferenceServices (a TEST TOOL, never a cluster).

It speaks the REST paths the official ``kubernetes`` client uses for one custom resource in one
namespace, and behaves like KServe's controller for the ``serving.kserve.io/stop`` annotation::

    GET   /apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices            list (labelSelector,
          fieldSelector=metadata.name=X); with watch=true: JSON lines from resourceVersion, timeoutSeconds
    GET   /apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices/NAME       get
    PATCH /apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices/NAME       application/merge-patch+json

What the real API server refuses it refuses too: a missing or wrong bearer token (401), another
namespace or any other verb (403, as the dispatcher's Role allows nothing else), another patch type
(415), unknown fields (400, as fieldValidation=Strict), non-string annotations (400), a changed name
(422) and a stale metadata.resourceVersion (409). Status is not writable through the main resource.

Removing the stop annotation makes the object Ready ``--ready-after`` seconds later (never, for
names given with ``--never-ready``); setting it takes the object out of Ready at once. Test hooks:
``GET /_events`` (what happened, in order), ``GET /_requests`` (every request received, in order)
and ``POST /_control`` (per-object ready delay, URL, never-ready).
Run: ``python -m anesbench_testkit.standin.kubeapi --objects isvcs.json --kubeconfig kc.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import click
from aiohttp import web

from anesbench import event_loop
from anesbench_testkit import until_stopped

GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
STOP = "serving.kserve.io/stop"
OBJECT_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
METADATA_FIELDS = {
    "name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
    "finalizers", "managedFields", "selfLink",
}
SPEC_FIELDS = {"predictor", "explainer", "transformer"}
MAX_WATCH_SECONDS = 600

Obj = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _selector_matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubeApiStandin:
    def __init__(self, namespace: str, token: str, ready_after: float, never_ready: set[str],
                 urls: dict[str, str]) -> None:
        self.namespace = namespace
        self.token = token
        self.ready_after = ready_after
        self.never_ready = set(never_ready)
        self.delays: dict[str, float] = {}
        self.urls = dict(urls)
        self.objects: dict[str, Obj] = {}
        self.version = 100
        self.history: list[tuple[int, str, Obj]] = []  # (resourceVersion, event type, object)
        self.events: list[dict[str, Any]] = []  # test hook: what happened, in order
        self.watchers: set[asyncio.Queue[tuple[int, str, Obj]]] = set()
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.requests: list[str] = []

    # --- state ------------------------------------------------------------------------------
    def _bump(self, obj: Obj, kind: str) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        snapshot = copy.deepcopy(obj)
        self.history.append((self.version, kind, snapshot))
        for queue in self.watchers:
            queue.put_nowait((self.version, kind, snapshot))

    def _record(self, name: str, event: str) -> None:
        self.events.append({"name": name, "event": event, "time": time.time()})

    def _url(self, name: str) -> str:
        return self.urls.get(name, f"http://{name}-predictor.{self.namespace}.svc.cluster.local").rstrip("/")

    def add(self, obj: Obj) -> None:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = self.namespace
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", _now())
        obj.pop("status", None)
        self.objects[meta["name"]] = obj
        if self._stopped(obj):
            self._set_stopped(obj)
        elif meta["name"] in self.never_ready:
            self._set_not_ready(obj, "PredictorNotReady")
        else:
            self._set_ready(obj)
        self._bump(obj, "ADDED")

    @staticmethod
    def _stopped(obj: Obj) -> bool:
        return str((obj["metadata"].get("annotations") or {}).get(STOP, "")).lower() == "true"

    def _conditions(self, obj: Obj, ready: bool, reason: str | None, stopped: bool) -> None:
        stamp = _now()
        status = obj.setdefault("status", {})
        conds = [{"type": t, "status": "True" if ready else "False", "lastTransitionTime": stamp}
                 for t in ("IngressReady", "PredictorReady", "Ready")]
        if reason:
            for cond in conds:
                if cond["status"] == "False":
                    cond["reason"] = reason
        conds.append({"type": "Stopped", "status": "True" if stopped else "False", "lastTransitionTime": stamp})
        status["conditions"] = conds
        status["observedGeneration"] = obj["metadata"].get("generation", 1)

    def _set_ready(self, obj: Obj) -> None:
        self._conditions(obj, True, None, False)
        url = self._url(obj["metadata"]["name"])
        obj["status"]["url"] = url
        obj["status"]["address"] = {"url": url}

    def _set_not_ready(self, obj: Obj, reason: str) -> None:
        self._conditions(obj, False, reason, False)

    def _set_stopped(self, obj: Obj) -> None:
        self._conditions(obj, False, "Stopped", True)
        obj["status"].pop("address", None)

    async def _become_ready(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        obj = self.objects.get(name)
        if obj is None or self._stopped(obj) or name in self.never_ready:
            return
        self._set_ready(obj)
        self._bump(obj, "MODIFIED")
        self._record(name, "ready")

    def _reconcile(self, name: str, was_stopped: bool) -> None:
        obj = self.objects[name]
        stopped = self._stopped(obj)
        if stopped and not was_stopped:
            task = self.pending.pop(name, None)
            if task is not None:
                task.cancel()
            self._set_stopped(obj)
            self._record(name, "stopped")
        elif was_stopped and not stopped:
            self._set_not_ready(obj, "PredictorNotReady")
            self._record(name, "started")
            if name not in self.never_ready:
                delay = self.delays.get(name, self.ready_after)
                self.pending[name] = asyncio.get_running_loop().create_task(self._become_ready(name, delay))

    # --- HTTP -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
        app.router.add_get("/_events", self.get_events)
        app.router.add_get("/_requests", self.get_requests)
        app.router.add_post("/_control", self.control)
        app.router.add_route("*", base, self.collection)
        app.router.add_route("*", base + "/{name}", self.item)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        if request.path.startswith("/_"):
            return await handler(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        namespace = request.match_info.get("namespace")
        if namespace is not None and namespace != self.namespace:
            return _status(403, "Forbidden", f"{PLURAL}.{GROUP} is forbidden: User \"system:serviceaccount:"
                           f"{self.namespace}:anesbench\" cannot {request.method.lower()} resource \"{PLURAL}\" in "
                           f"API group \"{GROUP}\" in the namespace \"{namespace}\"")
        return await handler(request)

    async def get_events(self, request: web.Request) -> web.Response:
        return web.json_response(self.events)

    async def get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body["name"]
        if "url" in body:
            self.urls[name] = body["url"]
        if "ready_after" in body:
            self.delays[name] = float(body["ready_after"])
        if "never_ready" in body:
            (self.never_ready.add if body["never_ready"] else self.never_ready.discard)(name)
        return web.json_response({"ok": True})

    def _forbidden(self, request: web.Request) -> web.Response:
        return _status(403, "Forbidden", f"{PLURAL}.{GROUP} is forbidden: cannot {request.method.lower()} "
                       f"resource \"{PLURAL}\" in API group \"{GROUP}\"")

    async def collection(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return self._forbidden(request)
        query = request.query
        labels = query.get("labelSelector", "")
        field = query.get("fieldSelector", "")
        wanted_name: str | None = None
        if field:
            match = re.fullmatch(r"metadata\.name==?([a-z0-9.-]+)", field)
            if match is None:
                return _status(400, "BadRequest", f"unable to parse requested fieldSelector {field!r}")
            wanted_name = match.group(1)

        def matches(obj: Obj) -> bool:
            meta = obj["metadata"]
            return (wanted_name is None or meta["name"] == wanted_name) and _selector_matches(
                meta.get("labels") or {}, labels)

        if query.get("watch") in ("true", "1"):
            return await self._watch(request, matches)
        items = [copy.deepcopy(o) for o in self.objects.values() if matches(o)]
        return web.json_response({"apiVersion": f"{GROUP}/{VERSION}", "kind": f"{KIND}List",
                                  "metadata": {"resourceVersion": str(self.version)}, "items": items})

    async def _watch(self, request: web.Request, matches: Any) -> web.StreamResponse:
        timeout = min(float(request.query.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        since_text = request.query.get("resourceVersion", "")
        queue: asyncio.Queue[tuple[int, str, Obj]] = asyncio.Queue()
        self.watchers.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            if since_text in ("", "0"):
                backlog = [(self.version, "ADDED", copy.deepcopy(o)) for o in self.objects.values()]
            else:
                since = int(since_text)
                backlog = [entry for entry in self.history if entry[0] > since]
            for _, kind, obj in backlog:
                if matches(obj):
                    await response.write((json.dumps({"type": kind, "object": obj}) + "\n").encode())
            seen = self.version
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    version, kind, obj = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                if version > seen and matches(obj):
                    await response.write((json.dumps({"type": kind, "object": obj}) + "\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.discard(queue)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def item(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        obj = self.objects.get(name)
        if request.method not in ("GET", "PATCH"):
            return self._forbidden(request)
        if obj is None:
            return _status(404, "NotFound", f"{PLURAL}.{GROUP} \"{name}\" not found")
        if request.method == "GET":
            return web.json_response(obj)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/merge-patch+json":
            return _status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: application/json-patch+json, "
                           f"application/merge-patch+json, application/apply-patch+yaml (got {content_type!r}; "
                           "this stand-in serves merge patches only)")
        try:
            patch = json.loads(await request.read())
        except ValueError as exc:
            return _status(400, "BadRequest", f"error decoding patch: {exc}")
        problem = self._check_patch(obj, patch)
        if problem is not None:
            return problem
        patch.pop("status", None)  # the status subresource is separate: ignored here, as by the real server
        patch.get("metadata", {}).pop("resourceVersion", None)
        was_stopped = self._stopped(obj)
        status = obj.pop("status", {})
        merged = merge_patch(obj, patch)
        merged["status"] = status
        if merged.get("spec") != obj.get("spec"):
            merged["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        self.objects[name] = merged
        self._reconcile(name, was_stopped)
        self._bump(merged, "MODIFIED")
        return web.json_response(merged)

    def _check_patch(self, obj: Obj, patch: Any) -> web.Response | None:
        if not isinstance(patch, dict):
            return _status(400, "BadRequest", "a JSON merge patch must be a JSON object")
        unknown = [f".{key}" for key in patch if key not in OBJECT_FIELDS]
        meta = patch.get("metadata") or {}
        if not isinstance(meta, dict):
            return _status(400, "BadRequest", ".metadata: expected an object")
        unknown += [f".metadata.{key}" for key in meta if key not in METADATA_FIELDS]
        spec = patch.get("spec") or {}
        if isinstance(spec, dict):
            unknown += [f".spec.{key}" for key in spec if key not in SPEC_FIELDS]
        if unknown:
            return _status(400, "BadRequest", f"{KIND} in version \"{VERSION}\" cannot be handled as a {KIND}: "
                           f"strict decoding error: unknown field \"{unknown[0].lstrip('.')}\"")
        for field_name in ("annotations", "labels"):
            values = meta.get(field_name) or {}
            if not isinstance(values, dict) or any(v is not None and not isinstance(v, str) for v in values.values()):
                return _status(400, "BadRequest", f"json: cannot unmarshal into Go struct field ObjectMeta.metadata."
                               f"{field_name} of type string")
        if "name" in meta and meta["name"] != obj["metadata"]["name"]:
            return _status(422, "Invalid", f"{KIND}.{GROUP} \"{obj['metadata']['name']}\" is invalid: "
                           "metadata.name: Invalid value: field is immutable")
        wanted = meta.get("resourceVersion")
        if wanted is not None and str(wanted) != obj["metadata"]["resourceVersion"]:
            return _status(409, "Conflict", f"Operation cannot be fulfilled on {PLURAL}.{GROUP} "
                           f"\"{obj['metadata']['name']}\": the object has been modified; please apply your changes "
                           "to the latest version and try again")
        return None


def kubeconfig(server: str, token: str, namespace: str) -> Obj:
    """A kubeconfig (JSON is YAML) pointing the official client at this server."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "standin", "preferences": {},
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "standin", "user": {"token": token}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin",
                                                    "namespace": namespace}}],
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--namespace", default="anesbench", show_default=True)
@click.option("--token", default="standin-token", show_default=True, help="Bearer token clients must send.")
@click.option("--objects", "objects_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON list of InferenceService objects to serve (e.g. rendered by the chart).")
@click.option("--ready-after", type=float, default=2.0, show_default=True,
              help="Seconds from start (stop annotation removed) to Ready.")
@click.option("--never-ready", multiple=True, help="An object that never becomes Ready (repeatable).")
@click.option("--url", "urls", multiple=True, help="NAME=URL: the status URL of an object (repeatable).")
@click.option("--kubeconfig", "kubeconfig_file", type=click.Path(dir_okay=False), default=None,
              help="Write a kubeconfig for this server here.")
def main(host: str, port: int, namespace: str, token: str, objects_file: str | None, ready_after: float,
         never_ready: tuple[str, ...], urls: tuple[str, ...], kubeconfig_file: str | None) -> None:
    """Serve InferenceServices like a Kubernetes API server with KServe would (test tool)."""
    mapping = dict(item.split("=", 1) for item in urls)
    standin = KubeApiStandin(namespace, token, ready_after, set(never_ready), mapping)
    event_loop.run(_serve(standin, host, port, objects_file, kubeconfig_file))


async def _serve(standin: KubeApiStandin, host: str, port: int, objects_file: str | None,
                 kubeconfig_file: str | None) -> None:
    if objects_file:
        with open(objects_file, encoding="utf-8") as handle:
            for obj in json.load(handle):
                standin.add(obj)
    runner = web.AppRunner(standin.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)  # open watches
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    server = f"http://{host}:{bound}"
    if kubeconfig_file:
        with open(kubeconfig_file, "w", encoding="utf-8") as handle:
            json.dump(kubeconfig(server, standin.token, standin.namespace), handle)
    print(f"listening on {server}", flush=True)
    await until_stopped()
    for task in standin.pending.values():
        task.cancel()
    await runner.shutdown()
    await runner.cleanup()


if __name__ == "__main__":
    main()
