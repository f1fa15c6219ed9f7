"""Every pod the chart renders passes Pod Security "restricted" (Kubernetes 1.33, version "latest").

The rules are written here as data, one predicate per check of the Pod Security Standards
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), baseline ones included since
restricted contains them. Predictor pods are what KServe builds: the InferenceService's predictor
(pod-level settings, volumes) merged with the ServingRuntime's containers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from chart_tools import CRD_API_VERSIONS, Render, helm_template

Pod = dict[str, Any]
Container = dict[str, Any]

RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                                "projected", "secret"})
SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                          "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                          "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                          "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _containers(pod: Pod) -> Iterator[Container]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or []


def _every(pod: Pod, check: Callable[[dict[str, Any]], bool]) -> bool:
    return all(check(c.get("securityContext") or {}) for c in _containers(pod))


def _inherited(pod: Pod, key: str, ok: Callable[[Any], bool]) -> bool:
    """A setting a container may take from the pod: each container's own value, else the pod's."""
    pod_value = (pod.get("securityContext") or {}).get(key)
    return all(ok((c.get("securityContext") or {}).get(key, pod_value)) for c in _containers(pod))


RULES: dict[str, Callable[[Pod], bool]] = {
    # baseline
    "host namespaces": lambda p: not (p.get("hostNetwork") or p.get("hostPID") or p.get("hostIPC")),
    "privileged": lambda p: _every(p, lambda sc: not sc.get("privileged")),
    "hostProcess": lambda p: not (p.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess")
    and _every(p, lambda sc: not sc.get("windowsOptions", {}).get("hostProcess")),
    "baseline capabilities": lambda p: _every(p, lambda sc: set(sc.get("capabilities", {}).get("add") or ())
                                              <= {"NET_BIND_SERVICE"}),
    "hostPath volumes": lambda p: not any("hostPath" in v for v in p.get("volumes") or []),
    "host ports": lambda p: all(not port.get("hostPort") for c in _containers(p) for port in c.get("ports") or []),
    "AppArmor": lambda p: _inherited(p, "appArmorProfile",
                                     lambda a: a is None or a.get("type") in ("RuntimeDefault", "Localhost")),
    "SELinux": lambda p: _inherited(p, "seLinuxOptions", lambda o: o is None or (
        o.get("type", "") in SELINUX_TYPES and not o.get("user") and not o.get("role"))),
    "/proc mount": lambda p: _every(p, lambda sc: sc.get("procMount", "Default") == "Default"),
    "sysctls": lambda p: all(s["name"] in SAFE_SYSCTLS for s in (p.get("securityContext") or {}).get("sysctls") or []),
    # restricted
    "volume types": lambda p: all(set(v) - {"name"} <= RESTRICTED_VOLUMES for v in p.get("volumes") or []),
    "privilege escalation": lambda p: _every(p, lambda sc: sc.get("allowPrivilegeEscalation") is False),
    "running as non-root": lambda p: _inherited(p, "runAsNonRoot", lambda v: v is True),
    "non-root user": lambda p: _inherited(p, "runAsUser", lambda v: v != 0),
    "seccomp": lambda p: _inherited(p, "seccompProfile", lambda s: s is not None and s.get("type") in SECCOMP_TYPES),
    "capabilities": lambda p: _every(p, lambda sc: "ALL" in (sc.get("capabilities", {}).get("drop") or ())
                                     and set(sc.get("capabilities", {}).get("add") or ()) <= {"NET_BIND_SERVICE"}),
}


def _predictor_pods(out: Render) -> dict[str, Pod]:
    runtimes = {doc["metadata"]["name"]: doc["spec"] for doc in out.of_kind("ServingRuntime")}
    pods = {}
    for isvc in out.of_kind("InferenceService"):
        predictor = dict(isvc["spec"]["predictor"])
        runtime = runtimes[predictor.pop("model")["runtime"]]
        pods[isvc["metadata"]["name"]] = {
            **predictor, "containers": runtime["containers"],
            "volumes": [*runtime.get("volumes", []), *predictor.get("volumes", [])],
        }
    return pods


def pods(out: Render) -> dict[str, Pod]:
    """Every pod spec the render asks for, by object kind and name."""
    found: dict[str, Pod] = {}
    for doc in out.documents:
        spec, name = doc.get("spec", {}), f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Pod":
            found[name] = spec
        elif doc["kind"] in ("Deployment", "Job"):
            found[name] = spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            found[name] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return {**found, **{f"InferenceService/{k}": v for k, v in _predictor_pods(out).items()}}


def violations(pod: Pod) -> list[str]:
    return [rule for rule, ok in RULES.items() if not ok(pod)]


@pytest.mark.parametrize("values", ["defaults", "full-values.yaml", "nightly-values.yaml"])
def test_every_pod_passes_restricted(render, values: str) -> None:
    found = pods(render(values, True))
    assert any(name.startswith("Deployment/") for name in found)
    failing = {name: bad for name, pod in found.items() if (bad := violations(pod))}
    assert not failing


def test_predictor_pods_are_checked(render) -> None:
    found = pods(render("nightly-values.yaml", True))
    assert sum(name.startswith("InferenceService/") for name in found) == 12


def test_the_rules_catch_a_root_sglang(tmp_values) -> None:
    """The opt-in to root renders a predictor the rules refuse (so they are not vacuous)."""
    values = {"models": [{"name": "m", "storageUri": "hf://o/m"}], "sglang": {"security": {"runAsRoot": True}}}
    result = helm_template((tmp_values(values),), api_versions=CRD_API_VERSIONS)
    assert result.returncode == 0, result.stderr
    out = Render("root sglang", [doc for doc in yaml.safe_load_all(result.stdout) if doc])
    (pod,) = _predictor_pods(out).values()
    assert {"privilege escalation", "running as non-root", "capabilities"} <= set(violations(pod))
