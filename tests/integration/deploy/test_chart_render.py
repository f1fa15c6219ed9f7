"""The chart renders the expected objects for each CI values file, and every object is valid:
built-in kinds against Kubernetes 1.33's schemas, CRD kinds against the CRDs' openAPIV3Schema,
both rejecting unknown fields."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from chart_tools import CHART, CI_VALUES, CRD_KINDS, KUBE_VERSION, NAMESPACE, Render, find_tool, run_tool

from tests.procs import wait_serving

VALUES = ["defaults", *(path.name for path in CI_VALUES)]

BASE = {
    "ConfigMap": 1,  # dashboard
    "Deployment": 2,  # dispatcher, grader
    "Job": 1,  # dataset download
    "PersistentVolumeClaim": 2,  # DuckDB, datasets
    "Pod": 1,  # helm test
    "PodDisruptionBudget": 1,
    "Service": 2,
    "ServiceAccount": 1,
    "Secret": 2,  # the dispatcher's tokens, the TLS certificate
    # one per kind of pod: dispatcher, grader, dataset download, helm test (+ SGLang, CronJobs, stand-in)
    "NetworkPolicy": 4,
}
MONITORING = {"ServiceMonitor": 1, "PrometheusRule": 1}
ONE_MODEL = {"ServingRuntime": 1, "InferenceService": 1, "PodMonitor": 1, "NetworkPolicy": 5}
# The dispatcher's own identity, when it drives InferenceServices (a schedule on a model, or on demand).
DISPATCHER_RBAC = {"Role": 1, "RoleBinding": 1}
# `models:` on a cluster without KServe: helm refuses (see test_models_without_kserve_are_refused).
REFUSED: dict[str, int] = {}

# values file -> (kinds when the cluster serves the CRD APIs, kinds when it does not)
EXPECTED_KINDS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    # the ServingRuntime renders without models too: InferenceServices made by hand may use it
    "defaults": ({**BASE, **MONITORING, "ServingRuntime": 1, "NetworkPolicy": 5}, BASE),
    "minimal-values.yaml": ({**BASE, **MONITORING, **ONE_MODEL}, REFUSED),
    "gpu-values.yaml": (
        {**BASE, **MONITORING, **ONE_MODEL, **DISPATCHER_RBAC, "ServiceAccount": 2, "CronJob": 1, "NetworkPolicy": 6},
        REFUSED,
    ),
    "nightly-values.yaml": (
        {
            **BASE,
            **MONITORING,
            **DISPATCHER_RBAC,
            "ServingRuntime": 1,
            "InferenceService": 12,
            "PodMonitor": 1,
            "ServiceAccount": 2,
            "CronJob": 12,
            "NetworkPolicy": 6,
        },
        REFUSED,
    ),
    "dev-values.yaml": (
        # stand-in Deployment + Service; no PDB for a single grader; monitoring and KServe off
        {
            **{k: v for k, v in BASE.items() if k not in ("ConfigMap", "PodDisruptionBudget")},
            "Deployment": 3,
            "Service": 3,
            "CronJob": 1,
            "NetworkPolicy": 6,
        },
    )
    * 2,
    "full-values.yaml": (
        # everything forced on: identical with and without the APIs
        {
            **BASE,
            **MONITORING,
            "ServingRuntime": 1,
            "InferenceService": 2,
            "PodMonitor": 1,
            "Deployment": 3,
            "Service": 3,
            "CronJob": 5,  # four schedules and the prune
            "HorizontalPodAutoscaler": 1,
            "NetworkPolicy": 7,
            "Secret": 1,  # the TLS certificate; the tokens come from an existing Secret
            **DISPATCHER_RBAC,
            "ServiceAccount": 2,
        },
    )
    * 2,
}
RENDERS = [
    (values, with_crds)
    for values in VALUES
    for with_crds in (True, False)
    if EXPECTED_KINDS[values][0 if with_crds else 1] is not REFUSED
]
RENDER_IDS = [f"{values}-{'crd-apis' if with_crds else 'no-crd-apis'}" for values, with_crds in RENDERS]


def test_every_ci_values_file_has_expectations() -> None:
    assert set(VALUES) == set(EXPECTED_KINDS)


@pytest.mark.parametrize(("values", "with_crds"), RENDERS, ids=RENDER_IDS)
def test_rendered_kinds(render, values: str, with_crds: bool) -> None:
    expected = EXPECTED_KINDS[values][0 if with_crds else 1]
    assert render(values, with_crds).kinds() == dict(sorted(expected.items()))


@pytest.mark.parametrize("values", [v for v, with_crds in RENDERS if not with_crds])
def test_crd_kinds_absent_without_apis_unless_forced(render, values: str) -> None:
    kinds = set(render(values, False).kinds())
    if values == "full-values.yaml":  # sglang.force and monitoring.force
        assert kinds >= CRD_KINDS
    else:
        assert not kinds & CRD_KINDS


def _validate_builtin(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(("values", "with_crds"), RENDERS, ids=RENDER_IDS)
def test_objects_are_valid(render, crd_validators, values: str, with_crds: bool) -> None:
    errors: list[str] = []
    for doc in render(values, with_crds).documents:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        key = (doc["apiVersion"], doc["kind"])
        try:
            if key in crd_validators:
                crd_validators[key].validate(doc)
            else:
                assert doc["kind"] not in CRD_KINDS, f"{where}: no CRD schema for {key}"
                _validate_builtin(doc)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {exc.message}")
        except jsonschema.ValidationError as exc:
            errors.append(f"{where}: {exc.json_path}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_unknown_fields(render, crd_validators) -> None:
    """The validators themselves refuse a misspelt field (so the test above is not vacuous)."""
    deployment = render("full-values.yaml", True).one("Deployment", "anesbench-dispatcher")
    bad = {**deployment, "spec": {**deployment["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_builtin(bad)
    isvc = render("full-values.yaml", True).of_kind("InferenceService")[0]
    bad_isvc = {**isvc, "spec": {"predictor": {**isvc["spec"]["predictor"], "minReplica": 1}}}
    with pytest.raises(jsonschema.ValidationError):
        crd_validators[(isvc["apiVersion"], "InferenceService")].validate(bad_isvc)


def _pod_specs(render: Render) -> dict[str, dict[str, Any]]:
    specs = {}
    for doc in render.documents:
        spec = doc.get("spec", {})
        if doc["kind"] == "Pod":
            specs[doc["metadata"]["name"]] = spec
        elif doc["kind"] in ("Deployment", "Job"):
            specs[doc["metadata"]["name"]] = spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            specs[doc["metadata"]["name"]] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def test_every_anesbench_container_is_locked_down(render) -> None:
    specs = _pod_specs(render("full-values.yaml", True))
    assert len(specs) == 1 + 2 + 1 + 4 + 1 + 1  # test pod, dispatcher, grader, download, 4 schedules, prune, stand-in
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # Only the dispatcher talks to the Kubernetes API (it drives the InferenceServices).
        assert spec["automountServiceAccountToken"] is (name == "anesbench-dispatcher"), name
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in spec["volumes"], name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] and sc["runAsUser"] == 10001, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


def test_services_use_native_grpc_probes(render) -> None:
    out = render("minimal-values.yaml", True)
    # On the plain-text health ports: kubelet's gRPC probes cannot speak TLS.
    for name, port, service in (
        ("anesbench-dispatcher", 50061, "anesbench.v1.Dispatcher"),
        ("anesbench-grader", 50062, "anesbench.v1.Grader"),
    ):
        container = out.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": service}
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": ""}


def test_dispatcher_is_a_single_recreated_writer_with_its_allow_list(render) -> None:
    out = render("full-values.yaml", True)
    dispatcher = out.one("Deployment", "anesbench-dispatcher")
    assert dispatcher["spec"]["replicas"] == 1
    assert dispatcher["spec"]["strategy"] == {"type": "Recreate"}
    container = dispatcher["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    allowed = {args[i + 1] for i, arg in enumerate(args) if arg == "--allow-endpoint"}
    assert allowed == {
        f"http://anesbench-qwen3-8b-predictor.{NAMESPACE}.svc.cluster.local/v1",
        f"http://anesbench-qwen3-32b-predictor.{NAMESPACE}.svc.cluster.local/v1",
        "https://api.example.com/v1",
        f"http://anesbench-standin.{NAMESPACE}.svc.cluster.local:8000/v1",
        "http://vllm.inference.svc.cluster.local:8000/v1",
    }
    assert args[args.index("--grader") + 1] == f"anesbench-grader.{NAMESPACE}.svc:50052"
    # The hosted endpoint's key goes to it alone; no key is given to every endpoint.
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--endpoint-key-file"] == [
        "https://api.example.com/v1=/var/run/anesbench/api-keys/hosted"
    ]
    assert "ANESBENCH_API_KEY" not in {env["name"] for env in container["env"]}
    volumes = {v["name"]: v for v in dispatcher["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "inference-api-keys"
    assert volumes["api-keys"]["secret"]["items"] == [{"key": "hosted", "path": "hosted"}]
    claims = {
        v["name"]: v["persistentVolumeClaim"]
        for v in dispatcher["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {
        "db": {"claimName": "anesbench-dispatcher-db"},
        "datasets": {"claimName": "anesbench-datasets", "readOnly": True},
    }


def test_no_api_key_env_without_a_secret(render) -> None:
    container = render("minimal-values.yaml", True).one("Deployment", "anesbench-dispatcher")["spec"][
        "template"
    ]["spec"]["containers"][0]
    assert "ANESBENCH_API_KEY" not in {env["name"] for env in container["env"]}
    assert "ANESBENCH_DISPATCHER_TOKEN" not in {env["name"] for env in container["env"]}
    assert "--endpoint-key-file" not in container["args"]


def test_sglang_runtime_and_inference_services(render) -> None:
    out = render("full-values.yaml", True)
    runtime = out.one("ServingRuntime")
    container = runtime["spec"]["containers"][0]
    assert container["image"].startswith("lmsysorg/sglang:v")
    assert container["command"] == ["python3", "-m", "sglang.launch_server"]
    args = container["args"]
    for flag, value in (
        ("--model-path", "/mnt/models"),
        ("--port", "8080"),
        ("--tp-size", "1"),
        ("--dp-size", "1"),
        ("--mem-fraction-static", "0.85"),
        ("--context-length", "32768"),
    ):
        assert args[args.index(flag) + 1] == value
    assert "--enable-metrics" in args
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in runtime["spec"][
        "volumes"
    ]
    isvcs = {i["metadata"]["name"]: i for i in out.of_kind("InferenceService")}
    big = isvcs["anesbench-qwen3-32b"]["spec"]["predictor"]
    assert big["model"]["storageUri"] == "pvc://models/Qwen3-32B"
    assert big["model"]["runtime"] == runtime["metadata"]["name"]
    assert big["model"]["resources"]["limits"]["nvidia.com/gpu"] == 2  # tpSize 2 x dpSize 1
    assert (big["minReplicas"], big["maxReplicas"]) == (1, 2)
    assert big["model"]["args"][:2] == ["--served-model-name", "qwen3-32b"]
    small = isvcs["anesbench-qwen3-8b"]["spec"]["predictor"]
    assert small["model"]["resources"]["limits"] == {"memory": "64Gi", "nvidia.com/gpu": 1}


def test_cronjobs_follow_the_schedules(render) -> None:
    out = render("full-values.yaml", True)
    cronjobs = {c["metadata"]["name"]: c["spec"] for c in out.of_kind("CronJob")}
    assert set(cronjobs) == {
        "anesbench-qwen3-8b-nightly",
        "anesbench-qwen3-32b-weekly",
        "anesbench-hosted-monthly",
        "anesbench-standin-smoke",
        "anesbench-prune",
    }
    for spec in cronjobs.values():
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] > 0
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        job = spec["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] > 0 and "backoffLimit" in job
    assert cronjobs["anesbench-qwen3-32b-weekly"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert cronjobs["anesbench-hosted-monthly"]["suspend"] is True
    args = cronjobs["anesbench-hosted-monthly"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[args.index("--endpoint") + 1] == "https://api.example.com/v1"
    assert args[args.index("--model") + 1] == "qwen3-235b-a22b"
    assert args[args.index("--wait-ready") + 1] == "600"
    # A schedule on an entry of models: names the InferenceService; the dispatcher waits for Ready.
    args = cronjobs["anesbench-qwen3-8b-nightly"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[args.index("--inference-service") + 1] == "anesbench-qwen3-8b"
    assert "--endpoint" not in args and "--wait-ready" not in args


def test_dashboard_configmap_carries_the_generated_json(render) -> None:
    configmap = render("minimal-values.yaml", True).one("ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"]["anesbench.json"] == (
        CHART / "dashboards" / "anesbench.json"
    ).read_text().rstrip("\n")


def test_helm_test_pod_checks_both_services(render) -> None:
    pod = render("defaults", False).one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    args = pod["spec"]["containers"][0]["command"][3:]
    assert args == [
        f"anesbench-dispatcher.{NAMESPACE}.svc:50051=",
        f"anesbench-dispatcher.{NAMESPACE}.svc:50051=anesbench.v1.Dispatcher",
        f"anesbench-grader.{NAMESPACE}.svc:50052=",
        f"anesbench-grader.{NAMESPACE}.svc:50052=anesbench.v1.Grader",
    ]


def test_health_check_script_compiles(render) -> None:
    script = render("defaults", False).one("Pod")["spec"]["containers"][0]["command"][2]
    compile(script, "helm-test", "exec")


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_strict(values: str) -> None:
    files = [] if values == "defaults" else ["--values", str(CHART / "ci" / values)]
    if EXPECTED_KINDS[values][1] is REFUSED:  # lint cannot be told the cluster's APIs
        files += ["--set", "sglang.force=true"]
    result = run_tool(
        [find_tool("helm"), "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *files]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_notes_tell_how_to_run_and_read_results(tmp_path) -> None:
    """NOTES.txt as `helm install` prints it (a client-side dry run, no cluster)."""
    result = run_tool(
        [
            find_tool("helm"),
            "install",
            "anesbench",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--dry-run=client",
            "--values",
            str(CHART / "ci" / "full-values.yaml"),
            "--kubeconfig",
            str(tmp_path / "no-cluster"),
        ]
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for expected in (
        "kubectl -n anesbench create job --from=cronjob/anesbench-qwen3-8b-nightly ",
        "kubectl -n anesbench port-forward svc/anesbench-dispatcher 50051:50051",
        "anesbench run --dispatcher 127.0.0.1:50051 --endpoint ",
        "anesbench leaderboard --dispatcher 127.0.0.1:50051",
        "grafana_dashboard",
        "helm test anesbench",
    ):
        assert expected in notes, notes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_check_script_against_a_real_grader(render) -> None:
    """The helm test pod's script, run here against `anesbench serve grader` on loopback."""
    script = render("defaults", False).one("Pod")["spec"]["containers"][0]["command"][2]
    port = _free_port()
    cli = Path(sys.executable).parent / "anesbench"  # the venv's console script
    grader = subprocess.Popen(
        [str(cli), "serve", "grader", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address)  # the helm test runs once the pods are Ready; so does this one
        ok = subprocess.run(
            [sys.executable, "-c", script, f"{address}=", f"{address}=anesbench.v1.Grader"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert ok.stdout.count("SERVING") == 2
        bad = subprocess.run(
            [sys.executable, "-c", script, f"{address}=anesbench.v1.NoSuchService"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1 and "NOT_FOUND" in bad.stdout, bad.stdout + bad.stderr
    finally:
        grader.terminate()
        try:
            grader.wait(timeout=20)
        except subprocess.TimeoutExpired:
            grader.kill()
            grader.wait()


def _rules(out: Render) -> list[dict[str, Any]]:
    return out.one("Role")["rules"]


def test_dispatcher_rbac_is_exactly_what_it_needs(render) -> None:
    """get/watch on the chart's InferenceServices by name, patch on the on-demand ones (and list, to find
    them after a restart), read-only for schedules on always-on models, nothing at all otherwise; no
    other pod has a token."""
    nightly = render("nightly-values.yaml", True)
    names = sorted(isvc["metadata"]["name"] for isvc in nightly.of_kind("InferenceService"))
    rules = _rules(nightly)
    assert [(sorted(rule.get("resourceNames", ())), rule["verbs"]) for rule in rules] == [
        (names, ["get", "watch"]), (names, ["patch"]), ([], ["list"])]  # every nightly model is on demand
    assert all(rule["apiGroups"] == ["serving.kserve.io"] and rule["resources"] == ["inferenceservices"]
               for rule in rules)
    role = nightly.one("Role")
    binding = nightly.one("RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "anesbench-dispatcher"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "anesbench-dispatcher", "namespace": NAMESPACE}]
    assert not nightly.of_kind("ClusterRole") and not nightly.of_kind("ClusterRoleBinding")
    pods = _pod_specs(nightly)
    dispatcher = pods.pop("anesbench-dispatcher")
    assert (dispatcher["serviceAccountName"], dispatcher["automountServiceAccountToken"]) == ("anesbench-dispatcher", True)
    args = dispatcher["containers"][0]["args"]
    assert args[args.index("--kube-namespace") + 1] == NAMESPACE
    assert args[args.index("--gpu-budget") + 1] == "2"
    assert args[args.index("--instance-name") + 1] == f"{NAMESPACE}/anesbench-dispatcher"
    for name, spec in pods.items():
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] == "anesbench", name
    # Read-only, by name: a schedule on an always-on model.
    assert _rules(render("gpu-values.yaml", True)) == [{
        "apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
        "resourceNames": ["anesbench-qwen3-8b"], "verbs": ["get", "watch"]}]
    # Nothing: no schedule on a model and no model on demand.
    for values in ("defaults", "minimal-values.yaml", "dev-values.yaml"):
        out = render(values, True)
        assert not out.of_kind("Role") and not out.of_kind("RoleBinding"), values
        spec = out.one("Deployment", "anesbench-dispatcher")["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False and "--kube-namespace" not in spec["containers"][0]["args"]


def test_on_demand_models_render_stopped_and_marked(render) -> None:
    isvcs = render("nightly-values.yaml", True).of_kind("InferenceService")
    assert len(isvcs) == 12
    for isvc in isvcs:
        assert isvc["metadata"]["annotations"]["serving.kserve.io/stop"] == "true"
        assert isvc["metadata"]["labels"]["anesbench.io/on-demand"] == "true"
    always_on = render("gpu-values.yaml", True).one("InferenceService")
    assert "serving.kserve.io/stop" not in always_on["metadata"]["annotations"]
    assert "anesbench.io/on-demand" not in always_on["metadata"]["labels"]


def test_per_model_placement_and_cache_volume(render) -> None:
    isvc = render("nightly-values.yaml", True).one("InferenceService", "anesbench-baichuan-m1-14b")
    predictor = isvc["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert predictor["runtimeClassName"] == "nvidia"
    assert predictor["annotations"] == {"example.com/cost-center": "evals"}
    assert predictor["volumes"] == [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}]
    assert predictor["model"]["volumeMounts"] == [{"name": "hf-cache", "mountPath": "/tmp/huggingface"}]


def test_sglang_probes_outlast_the_health_window(render) -> None:
    container = render("minimal-values.yaml", True).one("ServingRuntime")["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
        assert container[probe]["timeoutSeconds"] > 20  # /health runs a generation: up to 20 s
    assert container["readinessProbe"]["periodSeconds"] > container["readinessProbe"]["timeoutSeconds"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/models"


@pytest.mark.parametrize("values", [v for v, with_crds in ((v, w) for v in VALUES for w in (False,))
                                    if EXPECTED_KINDS[v][1] is REFUSED])
def test_models_without_kserve_are_refused(values: str) -> None:
    from chart_tools import helm_template

    result = helm_template((CHART / "ci" / values,))
    assert result.returncode != 0
    assert "does not serve KServe" in result.stderr and "Install KServe" in result.stderr
    assert "externalEndpoints" in result.stderr
    # Rendering offline with sglang.force renders them.
    assert helm_template((CHART / "ci" / values,), set_values=("sglang.force=true",)).returncode == 0


def test_security_contexts_are_overridable(tmp_path) -> None:
    import yaml
    from chart_tools import helm_template

    values = tmp_path / "openshift.yaml"
    values.write_text(yaml.safe_dump({"security": {"fixedUids": False}}))
    docs = [d for d in yaml.safe_load_all(helm_template((values,)).stdout) if d]
    out = Render("openshift", docs)
    for name, spec in _pod_specs(out).items():
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(spec["securityContext"]), name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            assert "runAsUser" not in container["securityContext"], name
    values.write_text(yaml.safe_dump({"podSecurityContext": {"runAsNonRoot": True},
                                      "containerSecurityContext": {"privileged": False}}))
    docs = [d for d in yaml.safe_load_all(helm_template((values,)).stdout) if d]
    dispatcher = Render("custom", docs).one("Deployment", "anesbench-dispatcher")["spec"]["template"]["spec"]
    assert dispatcher["securityContext"] == {"runAsNonRoot": True}
    assert dispatcher["containers"][0]["securityContext"] == {"privileged": False}


def test_cluster_domain_is_a_value(tmp_path) -> None:
    import yaml
    from chart_tools import helm_template

    values = tmp_path / "domain.yaml"
    values.write_text(yaml.safe_dump({"clusterDomain": "k8s.example.internal", "standin": {"enabled": True}}))
    docs = [d for d in yaml.safe_load_all(helm_template((values,)).stdout) if d]
    args = Render("domain", docs).one("Deployment", "anesbench-dispatcher")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    assert f"http://anesbench-standin.{NAMESPACE}.svc.k8s.example.internal:8000/v1" in args


def test_dataset_download_runs_on_install_only_and_skips_when_present(render) -> None:
    job = render("defaults", True).one("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["datasets", "download"] and "--skip-if-present" in args
