"""The stand-in Kubernetes API server refuses what a real one refuses, through the official client:
tests that use it must not pass only because it is lenient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from anesbench.errors import NotFound, PermissionDenied
from anesbench.kube import InferenceServiceApi, is_ready, is_stopped, start_patch
from tests.integration.test_inference_services import isvc
from tests.procs import CLI, Proc, start

NS = "evals"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


@pytest.fixture
def kubeapi(tmp_path: Path) -> Iterator[tuple[Proc, Path]]:
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps([isvc("m1"), isvc("always", on_demand=False)]))
    kubeconfig = tmp_path / "kubeconfig"
    proc = start([*CLI[:-1], "anesbench_testkit.standin.kubeapi", "--namespace", NS, "--token", "t0ken", "--objects",
                  str(objects), "--kubeconfig", str(kubeconfig), "--ready-after", "0.5"])
    yield proc, kubeconfig
    proc.stop()


def _custom(kubeconfig: Path) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(config.new_client_from_config(config_file=str(kubeconfig)))


def _patch(api: client.CustomObjectsApi, name: str, body: Any, **kwargs: Any) -> Any:
    return api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, body, **kwargs)


def test_strict_like_the_real_api_server(kubeapi) -> None:
    _, kubeconfig = kubeapi
    api = _custom(kubeconfig)
    current = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "m1")
    cases: list[tuple[Any, dict[str, Any], int]] = [
        ({"metadata": {"annotatons": {"x": "y"}}}, {}, 400),  # unknown field
        ({"spec": {"predictr": {}}}, {}, 400),
        ({"metadata": {"annotations": {"x": 1}}}, {}, 400),  # annotation values are strings
        ({"metadata": {"name": "other"}}, {}, 422),  # immutable
        ({"metadata": {"resourceVersion": "1", "annotations": {"x": "y"}}}, {}, 409),  # stale
        ({"metadata": {"annotations": {"x": "y"}}}, {"_content_type": "application/strategic-merge-patch+json"}, 415),
    ]
    for body, kwargs, status in cases:
        with pytest.raises(ApiException) as refused:
            _patch(api, "m1", body, **kwargs)
        assert refused.value.status == status, (body, refused.value.body)
    # nothing of the refused patches was applied
    assert api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "m1")["metadata"]["resourceVersion"] == \
        current["metadata"]["resourceVersion"]
    # the current resourceVersion is accepted
    _patch(api, "m1", {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"],
                                    "annotations": {"x": "y"}}})
    with pytest.raises(ApiException) as other_ns:
        api.get_namespaced_custom_object(GROUP, VERSION, "kube-system", PLURAL, "m1")
    assert other_ns.value.status == 403
    with pytest.raises(ApiException) as delete:
        api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "m1")
    assert delete.value.status == 403  # the dispatcher's Role has no delete


def test_wrong_token_is_unauthorized(kubeapi, tmp_path: Path) -> None:
    _, kubeconfig = kubeapi
    spec = json.loads(kubeconfig.read_text())
    spec["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(json.dumps(spec))
    with pytest.raises(ApiException) as refused:
        _custom(bad).get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "m1")
    assert refused.value.status == 401


def test_start_watch_and_stop(kubeapi) -> None:
    _, kubeconfig = kubeapi
    api = _custom(kubeconfig)
    stopped = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "m1")
    assert is_stopped(stopped) and not is_ready(stopped)
    version = stopped["metadata"]["resourceVersion"]
    _patch(api, "m1", start_patch("me"))
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                                      field_selector="metadata.name=m1", resource_version=version, timeout_seconds=10):
        seen.append((event["type"], is_ready(event["object"])))
        if is_ready(event["object"]):
            break
    assert seen == [("MODIFIED", False), ("MODIFIED", True)]
    items = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="anesbench.io/on-demand=true")
    assert [i["metadata"]["name"] for i in items["items"]] == ["m1"]


def test_our_client_maps_refusals_to_our_errors(kubeapi, monkeypatch) -> None:
    _, kubeconfig = kubeapi
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    async def scenario() -> None:
        with pytest.raises(NotFound, match="evals/nope: not found"):
            await InferenceServiceApi(NS).get("nope")
        with pytest.raises(PermissionDenied, match="403"):
            await InferenceServiceApi("kube-system").get("m1")
        obj = await InferenceServiceApi(NS).get("always")
        assert is_ready(obj)

    asyncio.run(scenario())
