"""What the chart does for a shared cluster: tokens as files, TLS on, one NetworkPolicy per kind of
pod selecting on component labels, no cloud-metadata egress, the DuckDB claim for one pod only."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from chart_tools import CRD_API_VERSIONS, NAMESPACE, Render, helm_template
from cryptography import x509

TOKENS_DIR, TLS_DIR = "/var/run/anesbench/tokens", "/var/run/anesbench/tls"
COMPONENT = "app.kubernetes.io/component"


def _render(tmp_values, values: dict[str, Any]) -> Render:
    result = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
    assert result.returncode == 0, result.stderr
    return Render("custom", [doc for doc in yaml.safe_load_all(result.stdout) if doc])


def _pod(out: Render, kind: str, name: str) -> dict[str, Any]:
    spec = out.one(kind, name)["spec"]
    return spec["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else spec["template"]["spec"]


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _secret_items(pod: dict[str, Any], volume: str) -> tuple[str, list[str]]:
    (found,) = [v["secret"] for v in pod["volumes"] if v["name"] == volume]
    return found["secretName"], [item["key"] for item in found["items"]]


def test_defaults_create_random_tokens_mounted_as_files(render) -> None:
    out = render("defaults", True)
    secret = out.one("Secret", "anesbench-tokens")
    tokens = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(tokens) == {"token", "reader", "grader"}
    assert len(set(tokens.values())) == 3 and all(len(token) == 48 for token in tokens.values())
    dispatcher = _pod(out, "Deployment", "anesbench-dispatcher")
    container = dispatcher["containers"][0]
    assert _arg(container["args"], "--auth-token-file") == f"{TOKENS_DIR}/runner"
    assert _arg(container["args"], "--read-token-file") == f"{TOKENS_DIR}/reader"
    assert _arg(container["args"], "--grader-token-file") == f"{TOKENS_DIR}/grader"
    assert _secret_items(dispatcher, "tokens") == ("anesbench-tokens", ["token", "reader", "grader"])
    grader = _pod(out, "Deployment", "anesbench-grader")
    assert _arg(grader["containers"][0]["args"], "--auth-token-file") == f"{TOKENS_DIR}/grader"
    assert _secret_items(grader, "tokens") == ("anesbench-tokens", ["grader"])  # never the runner token
    for pod in (dispatcher, grader):
        assert not any("TOKEN" in env["name"] for env in pod["containers"][0]["env"])


def test_cronjobs_read_the_runner_token_and_the_ca_from_files(render) -> None:
    out = render("nightly-values.yaml", True)
    cronjobs = out.of_kind("CronJob")
    assert cronjobs
    for cronjob in cronjobs:
        pod = _pod(out, "CronJob", cronjob["metadata"]["name"])
        args = pod["containers"][0]["args"]
        assert _arg(args, "--dispatcher-token-file") == f"{TOKENS_DIR}/runner"
        assert _arg(args, "--dispatcher-ca") == f"{TLS_DIR}/ca.crt"
        assert _secret_items(pod, "tokens") == ("anesbench-tokens", ["token"])
        assert _secret_items(pod, "tls") == ("anesbench-tls", ["ca.crt"])  # not the server's key
        assert not any("TOKEN" in env["name"] for env in pod["containers"][0]["env"])


def test_defaults_serve_tls_with_a_certificate_for_both_services(render) -> None:
    out = render("defaults", True)
    secret = out.one("Secret", "anesbench-tls")
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {f"anesbench-dispatcher.{NAMESPACE}.svc", f"anesbench-grader.{NAMESPACE}.svc"} <= set(names)
    dispatcher = _pod(out, "Deployment", "anesbench-dispatcher")["containers"][0]["args"]
    assert _arg(dispatcher, "--tls-cert") == f"{TLS_DIR}/tls.crt" and _arg(dispatcher, "--grader-ca") == f"{TLS_DIR}/ca.crt"
    assert _arg(_pod(out, "Deployment", "anesbench-grader")["containers"][0]["args"], "--tls-key") == f"{TLS_DIR}/tls.key"
    test_pod = out.one("Pod")["spec"]
    assert {"name": "GRPC_CA_FILE", "value": f"{TLS_DIR}/ca.crt"} in test_pod["containers"][0]["env"]


def test_an_existing_tls_secret_replaces_the_generated_one(tmp_values) -> None:
    out = _render(tmp_values, {"tls": {"existingSecret": "from-cert-manager"}})
    assert not [s for s in out.of_kind("Secret") if s["type"] == "kubernetes.io/tls"]
    assert _secret_items(_pod(out, "Deployment", "anesbench-dispatcher"), "tls")[0] == "from-cert-manager"


def test_auth_off_needs_the_explicit_switch_and_a_cluster_ip(tmp_values) -> None:
    off = _render(tmp_values, {"dispatcher": {"auth": {"insecureDisable": True}}})
    assert "--auth-token-file" not in _pod(off, "Deployment", "anesbench-dispatcher")["containers"][0]["args"]
    assert not [s for s in off.of_kind("Secret") if s["metadata"]["name"].endswith("-tokens")]
    for service in ("LoadBalancer", "NodePort"):
        values = {"dispatcher": {"auth": {"insecureDisable": True}, "service": {"type": service}}}
        refused = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
        assert refused.returncode != 0 and "insecureDisable" in refused.stderr, service


def test_the_duckdb_claim_is_for_one_pod_and_refuses_read_write_many(render, tmp_values) -> None:
    claim = render("defaults", True).one("PersistentVolumeClaim", "anesbench-dispatcher-db")
    assert claim["spec"]["accessModes"] == ["ReadWriteOncePod"]
    values = {"dispatcher": {"persistence": {"accessModes": ["ReadWriteMany"]}}}
    refused = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
    assert refused.returncode != 0 and "accessModes" in refused.stderr


def test_a_startup_probe_covers_resume(render) -> None:
    container = _pod(render("defaults", True), "Deployment", "anesbench-dispatcher")["containers"][0]
    startup = container["startupProbe"]
    assert startup["grpc"] == {"port": 50061, "service": ""}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert "initialDelaySeconds" not in container["livenessProbe"]


def _policies(out: Render) -> dict[str, dict[str, Any]]:
    return {p["spec"]["podSelector"]["matchLabels"][COMPONENT]: p["spec"] for p in out.of_kind("NetworkPolicy")}


def _pod_components(out: Render) -> set[str]:
    found = set()
    for doc in out.documents:
        if doc["kind"] in ("Deployment", "Job", "CronJob", "Pod", "InferenceService"):
            found.add(doc["metadata"]["labels"][COMPONENT])
    return found


def _from_components(rule: dict[str, Any]) -> set[str]:
    return {peer["podSelector"]["matchLabels"][COMPONENT] for peer in rule.get("from", ()) if "podSelector" in peer}


@pytest.mark.parametrize("values", ["defaults", "full-values.yaml", "nightly-values.yaml", "dev-values.yaml"])
def test_every_kind_of_pod_has_its_own_policy(render, values: str) -> None:
    out = render(values, True)
    policies = _policies(out)
    assert _pod_components(out) <= set(policies)
    for component, spec in policies.items():
        assert spec["policyTypes"] == ["Ingress", "Egress"], component
        for rule in spec["ingress"]:
            for peer in rule.get("from", ()):
                if "podSelector" in peer:  # never the release labels alone: SGLang pods carry those
                    assert COMPONENT in peer["podSelector"]["matchLabels"], component


def test_ingress_comes_only_from_the_components_that_call(render) -> None:
    policies = _policies(render("full-values.yaml", True))
    callers = {component: set().union(*(_from_components(rule) for rule in spec["ingress"]))
               for component, spec in policies.items()}
    assert callers["dispatcher"] == {"schedule", "test"}
    assert callers["grader"] == {"dispatcher", "test"}
    assert callers["inference"] == callers["standin"] == {"dispatcher"}
    assert policies["schedule"]["ingress"] == policies["datasets"]["ingress"] == policies["test"]["ingress"] == []


def test_egress_never_reaches_cloud_metadata_and_only_the_dispatcher_reaches_the_api(render) -> None:
    policies = _policies(render("full-values.yaml", True))
    for component, spec in policies.items():
        for rule in spec["egress"]:
            for peer in rule["to"]:
                block = peer.get("ipBlock")
                if block and block["cidr"] == "0.0.0.0/0":
                    assert "169.254.0.0/16" in block["except"], component
            ports = {port["port"] for port in rule.get("ports", ())}
            if component != "dispatcher":
                assert 6443 not in ports, component
    assert any({"port": 6443, "protocol": "TCP"} in rule["ports"] for rule in policies["dispatcher"]["egress"])
    assert policies["grader"]["egress"] == []  # the graders call nobody


def test_listed_clients_may_reach_the_dispatcher(tmp_values) -> None:
    client = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "notebooks"}}}
    out = _render(tmp_values, {"networkPolicy": {"dispatcherClients": [client]}})
    grpc_rule = _policies(out)["dispatcher"]["ingress"][0]
    assert client in grpc_rule["from"]


def test_a_narrowed_api_server_is_cut_out_of_every_other_pods_egress(tmp_values) -> None:
    out = _render(tmp_values, {"networkPolicy": {"kubeApiEgress": {"cidrs": ["10.96.0.1/32"]}}})
    (rule,) = _policies(out)["datasets"]["egress"][1:]
    assert rule["to"][0]["ipBlock"]["except"] == ["169.254.0.0/16", "10.96.0.1/32"]


def test_sglang_runs_non_root_with_caches_on_empty_dirs(render) -> None:
    out = render("nightly-values.yaml", True)
    runtime = out.one("ServingRuntime")["spec"]
    container = runtime["containers"][0]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] != 0 and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in runtime["volumes"])
    for isvc in out.of_kind("InferenceService"):
        predictor = isvc["spec"]["predictor"]
        assert predictor["securityContext"]["runAsNonRoot"] is True
        assert predictor["automountServiceAccountToken"] is False
