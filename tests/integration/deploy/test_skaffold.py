"""skaffold.yaml is well formed and what it points at exists and renders. Skaffold itself is not
installable here (no PyPI, npm or Debian package), so its config is checked with the fields of the
v4beta13 schema it uses, its profiles' JSON patches are applied by hand, and each profile's Helm
release is rendered with the real helm."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from chart_tools import CRD_API_VERSIONS, LOADER, REPO, helm_template

SKAFFOLD = REPO / "skaffold.yaml"

# Fields of skaffold/v4beta13 this config may use (from the published JSON schema).
CONFIG_KEYS = {
    "apiVersion",
    "kind",
    "metadata",
    "build",
    "deploy",
    "portForward",
    "profiles",
    "manifests",
    "test",
}
ARTIFACT_KEYS = {"image", "context", "docker", "sync", "requires", "hooks", "platforms", "runtimeType"}
DOCKER_KEYS = {
    "dockerfile",
    "target",
    "buildArgs",
    "network",
    "addHost",
    "cacheFrom",
    "cliFlags",
    "pullParent",
    "noCache",
    "cacheTo",
    "squash",
    "secrets",
    "ssh",
}
RELEASE_KEYS = {
    "name",
    "chartPath",
    "remoteChart",
    "valuesFiles",
    "namespace",
    "version",
    "setValues",
    "setValueTemplates",
    "setFiles",
    "createNamespace",
    "wait",
    "recreatePods",
    "skipBuildDependencies",
    "skipTests",
    "useHelmSecrets",
    "repo",
    "upgradeOnChange",
    "overrides",
    "packaged",
    "dependsOn",
}
PORT_FORWARD_KEYS = {"resourceType", "resourceName", "namespace", "port", "localPort", "address"}
PROFILE_KEYS = {
    "name",
    "activation",
    "requiresAllActivations",
    "patches",
    "build",
    "test",
    "manifests",
    "deploy",
    "portForward",
    "resourceSelector",
    "verify",
    "customActions",
}
PATCH_OPS = {"add", "remove", "replace", "move", "copy", "test"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.load(SKAFFOLD.read_text(), Loader=LOADER)


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def apply_patches(document: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """The subset of RFC 6902 skaffold profiles use: add and replace."""
    out = copy.deepcopy(document)
    for patch in patches:
        *parents, last = _pointer(patch["path"])
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if patch["op"] == "add" and isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), patch["value"])
        elif patch["op"] in ("add", "replace"):
            if isinstance(node, list):
                node[int(last)] = patch["value"]
            else:
                assert patch["op"] == "add" or last in node, f"replace of a missing {patch['path']}"
                node[last] = patch["value"]
        else:
            raise AssertionError(f"unsupported patch op {patch['op']}")
    return out


def test_structure(config: dict[str, Any]) -> None:
    assert config["apiVersion"].startswith("skaffold/v4beta")
    assert config["kind"] == "Config"
    assert set(config) <= CONFIG_KEYS
    product, testkit = config["build"]["artifacts"]
    for artifact in (product, testkit):
        assert set(artifact) <= ARTIFACT_KEYS and set(artifact["docker"]) <= DOCKER_KEYS
        assert (REPO / artifact.get("context", ".") / artifact["docker"]["dockerfile"]).is_file()
    # the test-tool image is built on the product image it was given, never the other way round
    assert testkit["requires"] == [{"image": product["image"], "alias": "BASE"}]
    assert testkit["docker"]["buildArgs"] == {"BASE": "{{.BASE}}"}
    (release,) = config["deploy"]["helm"]["releases"]
    assert set(release) <= RELEASE_KEYS
    assert (REPO / release["chartPath"] / "Chart.yaml").is_file()
    templates = release["setValueTemplates"]
    assert set(templates) == {"image.repository", "image.tag", "standin.image.repository", "standin.image.tag"}
    assert "{{.IMAGE_REPO_" + product["image"] + "}}" in templates["image.repository"]
    assert "{{.IMAGE_REPO_" + testkit["image"].replace("-", "_") + "}}" in templates["standin.image.repository"]
    for forward in config.get("portForward", []):
        assert set(forward) <= PORT_FORWARD_KEYS
    names = [profile["name"] for profile in config["profiles"]]
    assert names == ["dev", "gpu"]
    for profile in config["profiles"]:
        assert set(profile) <= PROFILE_KEYS
        for patch in profile.get("patches", []):
            assert patch["op"] in PATCH_OPS


def _profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    profile = next(p for p in config["profiles"] if p["name"] == name)
    return apply_patches(config, profile.get("patches", []))


def _render_release(config: dict[str, Any], with_crds: bool) -> list[dict[str, Any]]:
    (release,) = config["deploy"]["helm"]["releases"]
    files = tuple(REPO / path for path in release.get("valuesFiles", []))
    for path in files:
        assert path.is_file(), path
    # what skaffold substitutes for the templates after a local build
    image = {"image.repository": "anesbench", "image.tag": "a1b2c3d@sha256:" + "0" * 64,
             "standin.image.repository": "anesbench-testkit", "standin.image.tag": "e4f5a6b@sha256:" + "1" * 64}
    result = helm_template(
        files,
        api_versions=CRD_API_VERSIONS if with_crds else (),
        set_values=tuple(f"{key}={value}" for key, value in image.items()),
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=LOADER) if doc]


def test_dev_profile_runs_without_gpus(config: dict[str, Any]) -> None:
    dev = _profile(config, "dev")
    assert {"command": "dev"} in next(p for p in config["profiles"] if p["name"] == "dev")["activation"]
    docs = _render_release(dev, with_crds=True)  # even on a cluster with KServe and prometheus-operator
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {
        "InferenceService",
        "ServingRuntime",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    }
    services = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Service"}
    assert "anesbench-standin" in services
    for forward in dev["portForward"]:
        assert forward["resourceName"] in services
    cronjob = next(doc for doc in docs if doc["kind"] == "CronJob")
    args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        args[args.index("--endpoint") + 1] == "http://anesbench-standin.anesbench.svc.cluster.local:8000/v1"
    )
    images = {
        doc["metadata"]["name"]: c["image"]
        for doc in docs
        if doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images.pop("anesbench-standin") == "anesbench-testkit:e4f5a6b@sha256:" + "1" * 64
    assert set(images.values()) == {"anesbench:a1b2c3d@sha256:" + "0" * 64}


def test_gpu_profile_serves_a_model(config: dict[str, Any]) -> None:
    docs = _render_release(_profile(config, "gpu"), with_crds=True)
    kinds = {doc["kind"] for doc in docs}
    assert {"InferenceService", "ServingRuntime", "ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds


def test_default_release_renders(config: dict[str, Any]) -> None:
    services = {
        doc["metadata"]["name"]
        for doc in _render_release(config, with_crds=False)
        if doc["kind"] == "Service"
    }
    for forward in config["portForward"]:
        assert forward["resourceName"] in services
