"""The dispatcher drives KServe InferenceServices through the official kubernetes client, against the
stand-in Kubernetes API server (anesbench_testkit.standin.kubeapi) reached through a generated kubeconfig.

The InferenceServices are the chart's own rendering of on-demand models; their status URLs point
at model stand-ins. Everything runs as real processes on loopback ports they pick.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE, SAMPLE_ITEMS
from tests.procs import CLI, ROOT, Proc, run_cli, standin_control, standin_stats, start, start_grader, start_standin
from tests.waiting import wait_until

ITEMS = SAMPLE_ITEMS
NAMESPACE = "evals"
OWNER = "evals/anesbench-dispatcher"


def isvc(name: str, *, on_demand: bool = True) -> dict[str, Any]:
    """An InferenceService as the chart renders an entry of `models:` (see test_chart_render)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"anesbench.io/model": name},
                                "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}}
    if on_demand:
        metadata["labels"]["anesbench.io/on-demand"] = "true"
        metadata["annotations"]["serving.kserve.io/stop"] = "true"
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata,
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sglang"}, "storageUri": "hf://x/y"}}}}


def http(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class Cluster:
    tmp: Path
    kubeapi: Proc
    kubeconfig: Path
    grader: Proc
    standins: dict[str, Proc]
    datasets: Path
    dispatcher: Proc | None = None
    dispatcher_metrics: str = ""
    procs: list[Proc] = field(default_factory=list)

    def events(self, name: str | None = None) -> list[str]:
        events = http(f"{self.kubeapi.address}/_events")
        return [e["event"] if name else f"{e['name']}:{e['event']}" for e in events if name in (None, e["name"])]

    def object(self, name: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.kubeapi.address}/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/{name}",
            headers={"Authorization": "Bearer t0ken"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def start_dispatcher(self, *extra: str, port: int = 0) -> Proc:
        proc = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", str(port), "--grader",
                      self.grader.address, "--db", str(self.tmp / "d.duckdb"), "--metrics-port", "0",
                      "--datasets-dir", str(self.datasets), "--kube-namespace", NAMESPACE, "--instance-name", OWNER,
                      "--model-idle-seconds", "1", *extra],
                     env={"KUBECONFIG": str(self.kubeconfig)}, stderr=(self.tmp / "dispatcher.log").open("a"))
        self.dispatcher_metrics = proc.wait_line("metrics on ")
        self.dispatcher = proc
        self.procs.append(proc)
        return proc

    def run(self, name: str, *extra: str) -> subprocess.Popen[str]:
        assert self.dispatcher is not None
        return subprocess.Popen([*CLI, "run", "--dispatcher", self.dispatcher.address, "--inference-service", name,
                                 "--model", "standin", "--dataset", "anesbench", "--no-progress", *extra],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.dispatcher_metrics}/metrics", timeout=10) as response:
            return response.read().decode()

    def requests(self) -> list[str]:
        """Every request the Kubernetes API stand-in received, in order ("PATCH /apis/...")."""
        return list(http(f"{self.kubeapi.address}/_requests"))

    def wait_events(self, predicate: Callable[[list[str]], bool], timeout: float = 60) -> list[str]:
        try:
            return wait_until(lambda: events if predicate(events := self.events()) else None,
                              "the kube events to match", timeout=timeout, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; events: {self.events()}\n{self.log()}") from None

    def log(self) -> str:
        return (self.tmp / "dispatcher.log").read_text(errors="replace")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(models: dict[str, bool], *kubeapi_args: str, objects_list: list[dict[str, Any]] | None = None) -> Cluster:
        datasets = tmp_path / "datasets"
        datasets.mkdir()
        shutil.copy(SAMPLE, datasets / "anesbench.jsonl")
        standins = {name: start_standin("--answer-key", str(SAMPLE), "--latency-ms", "5") for name in models}
        objects = tmp_path / "isvcs.json"
        objects.write_text(json.dumps(objects_list or [isvc(name, on_demand=on) for name, on in models.items()]))
        kubeconfig = tmp_path / "kubeconfig"
        urls = [arg for name, proc in standins.items() for arg in ("--url", f"{name}={proc.address}")]
        kubeapi = start([*CLI[:-1], "anesbench_testkit.standin.kubeapi", "--namespace", NAMESPACE, "--token", "t0ken",
                         "--objects", str(objects), "--kubeconfig", str(kubeconfig), "--ready-after", "1.5",
                         *urls, *kubeapi_args])
        grader, _ = start_grader()
        made.append(Cluster(tmp_path, kubeapi, kubeconfig, grader, standins, datasets,
                            procs=[kubeapi, grader, *standins.values()]))
        return made[-1]

    yield make
    for c in made:
        for proc in reversed(c.procs):
            proc.stop()


def _finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_on_demand_model_is_started_evaluated_and_stopped(cluster) -> None:
    c = cluster({"m1": True})
    c.start_dispatcher()
    code, out, err = _finish(c.run("m1", "--run-id", "r1", "--languages", "en,zh"))
    assert code == 0, err + c.log()
    assert out.startswith(f"run_id=r1 status=completed done={2 * ITEMS} total={2 * ITEMS}")
    stats = standin_stats(c.standins["m1"].address)
    assert stats["answered"] == 2 * ITEMS + stats["follow_ups"]  # each reply once, and the follow-up turns
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:ready", "m1:stopped"]
    annotations = c.object("m1")["metadata"]["annotations"]
    assert annotations["serving.kserve.io/stop"] == "true" and "anesbench.io/started-by" not in annotations
    runs = json.loads(run_cli("runs", "--dispatcher", c.dispatcher.address, "--format", "json").stdout)
    assert [(r["id"], r["status"], r["endpoint"]) for r in runs] == [("r1", "completed", c.standins["m1"].address)]
    metrics = c.metrics()
    assert 'anesbench_model_state{model="m1",state="stopped"} 1.0' in metrics
    assert 'anesbench_model_ready_wait_seconds_count{model="m1"} 1.0' in metrics
    assert 'anesbench_model_starts_total{model="m1"} 1.0' in metrics
    assert "started InferenceService m1" in c.log() and "stopped InferenceService m1" in c.log()


def test_two_runs_sharing_a_model_start_it_once(cluster) -> None:
    c = cluster({"m1": True})
    c.start_dispatcher()
    standin_control(c.standins["m1"].address, latency_ms=20)
    first, second = c.run("m1", "--run-id", "a"), c.run("m1", "--run-id", "b", "--languages", "zh")
    assert _finish(first)[0] == 0 and _finish(second)[0] == 0, c.log()
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:ready", "m1:stopped"]
    stats = standin_stats(c.standins["m1"].address)
    assert stats["answered"] == 2 * ITEMS + stats["follow_ups"]  # each reply once, and the follow-up turns


def test_gpu_budget_of_one_serialises_two_models(cluster) -> None:
    c = cluster({"m1": True, "m2": True})
    # The readiness deadline counts from a model's start, not from the time its run waited in the queue.
    c.start_dispatcher("--gpu-budget", "1", "--ready-timeout", "5")
    for proc in c.standins.values():
        standin_control(proc.address, latency_ms=300)  # the first run lasts longer than the deadline
    first, second = (c.run("m1", "--run-id", "a", "--concurrency", "4"),
                     c.run("m2", "--run-id", "b", "--concurrency", "4"))
    assert _finish(first)[0] == 0 and _finish(second)[0] == 0, c.log()
    events = c.wait_events(lambda e: e.count("m1:stopped") + e.count("m2:stopped") == 2)
    # One model is up at a time: the second starts only after the first has been stopped.
    one, other = events[0].split(":")[0], events[3].split(":")[0]
    assert events == [f"{one}:started", f"{one}:ready", f"{one}:stopped", f"{other}:started", f"{other}:ready",
                      f"{other}:stopped"], events
    assert "queued, GPU budget 1 in use by" in c.log()


def test_dispatcher_restarted_mid_run_still_stops_the_model(cluster) -> None:
    c = cluster({"m1": True})
    dispatcher = c.start_dispatcher()
    standin_control(c.standins["m1"].address, latency_ms=60)
    follower = c.run("m1", "--run-id", "long", "--languages", "en,zh", "--concurrency", "4")
    wait_until(lambda: standin_stats(c.standins["m1"].address)["answered"] >= 8, "8 answers before the restart")
    assert dispatcher.stop(signal.SIGKILL) == -signal.SIGKILL
    assert c.events("m1") == ["started", "ready"]
    c.start_dispatcher(port=int(dispatcher.address.rsplit(":", 1)[1]))
    standin_control(c.standins["m1"].address, latency_ms=1)
    code, out, err = _finish(follower)
    assert code == 0, err + c.log()
    assert "status=completed" in out
    # Adopted, not started a second time; stopped once the resumed run is done.
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:ready", "m1:stopped"]
    assert "adopted 1 on-demand model(s)" in c.log()


def test_model_that_never_becomes_ready_fails_the_run_with_that_cause(cluster) -> None:
    c = cluster({"m1": True}, "--never-ready", "m1")
    c.start_dispatcher("--ready-timeout", "3")
    code, _out, err = _finish(c.run("m1", "--run-id", "nr"))
    assert code == 1
    assert "did not become Ready within 3 s" in err and "PredictorNotReady" in err, err
    # The dispatcher started it, so it stops it again.
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:stopped"]
    assert standin_stats(c.standins["m1"].address)["answered"] == 0


def test_always_on_model_is_waited_for_and_never_touched(cluster) -> None:
    c = cluster({"m1": False})
    c.start_dispatcher()
    code, out, err = _finish(c.run("m1", "--run-id", "on"))
    assert code == 0 and "status=completed" in out, err
    # Only models this dispatcher counts against the budget get a stop timer; this one never was.
    metrics = c.metrics()
    assert 'anesbench_model_state{model="m1",state="ready"} 1.0' in metrics
    assert "anesbench_model_budget_used 0.0" in metrics
    assert [r for r in c.requests() if not r.startswith("GET ")] == []
    assert c.events("m1") == []


def test_bad_requests_are_refused_at_once(cluster) -> None:
    c = cluster({"m1": True})
    c.start_dispatcher()
    assert c.dispatcher is not None
    other = run_cli("run", "--dispatcher", c.dispatcher.address, "--inference-service", "m1", "--namespace", "kube-system",
                    "--model", "m", "--dataset", "anesbench")
    assert other.returncode == 2 and "namespace evals only" in other.stderr
    both = run_cli("run", "--dispatcher", c.dispatcher.address, "--inference-service", "m1", "--endpoint",
                   "http://127.0.0.1:1/v1", "--model", "m", "--dataset", "anesbench")
    assert both.returncode == 2 and both.stderr.strip().endswith(
        "error: --endpoint: give either --endpoint or --inference-service, not both"), both.stderr
    embedded = run_cli("run", "--inference-service", "m1", "--model", "m", "--dataset", str(SAMPLE))
    assert embedded.returncode == 2 and "needs --dispatcher" in embedded.stderr
    missing = run_cli("run", "--dispatcher", c.dispatcher.address, "--inference-service", "nope", "--model", "m",
                      "--dataset", "anesbench")
    assert missing.returncode == 1 and "nope: not found" in missing.stderr
    assert c.events() == []


def test_cancelled_run_releases_its_model_and_its_series(cluster) -> None:
    c = cluster({"m1": True})
    c.start_dispatcher()
    standin_control(c.standins["m1"].address, latency_ms=200)
    follower = c.run("m1", "--run-id", "cx", "--concurrency", "2")
    wait_until(lambda: standin_stats(c.standins["m1"].address)["answered"] >= 4, "4 answers before the cancel")
    assert 'anesbench_run_items{config="anesbench-cot/t0/max2048/n1/en",dataset="anesbench",model="standin",state="total"}' \
        in c.metrics()
    assert c.dispatcher is not None
    cancelled = run_cli("cancel", "cx", "--dispatcher", c.dispatcher.address)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr
    _finish(follower)
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:ready", "m1:stopped"]
    assert "anesbench_run_items{" not in c.metrics()


def _helm_render(values: Path) -> list[dict[str, Any]]:
    import yaml

    helm = ROOT / ".tools" / "bin" / "helm"
    result = subprocess.run(
        [str(helm if helm.exists() else shutil.which("helm") or "helm"), "template", "anesbench",
         str(ROOT / "charts" / "anesbench"),
         "--namespace", NAMESPACE, "--values", str(values), "--api-versions", "serving.kserve.io/v1beta1",
         "--api-versions", "serving.kserve.io/v1alpha1"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _mount_secrets(docs: list[dict[str, Any]], folder: Path) -> Callable[[str], str]:
    """Write the rendered token and TLS Secrets where the pods would see them, below ``folder``; returns
    the function mapping a path in a pod to that copy."""
    mounts = {"anesbench-tokens": ("tokens", {"token": "runner", "reader": "reader", "grader": "grader"}),
              "anesbench-tls": ("tls", {key: key for key in ("tls.crt", "tls.key", "ca.crt")})}
    for secret in (d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] in mounts):
        where, files = mounts[secret["metadata"]["name"]]
        (folder / where).mkdir()
        for key, name in files.items():
            (folder / where / name).write_bytes(base64.b64decode(secret["data"][key]))
    return lambda arg: arg.replace("/var/run/anesbench/", f"{folder}/")


def test_the_charts_objects_and_command_lines_work_together(cluster, tmp_path: Path) -> None:
    """The chart's on-demand InferenceServices, its dispatcher flags and its CronJob command line,
    run against the stand-in API server: the schedule's run starts the model, completes, stops it."""
    docs = _helm_render(ROOT / "charts" / "anesbench" / "ci" / "nightly-values.yaml")
    isvcs = [d for d in docs if d["kind"] == "InferenceService"][:2]
    names = [d["metadata"]["name"] for d in isvcs]
    c = cluster(dict.fromkeys(names, True), objects_list=isvcs)
    dispatcher = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "anesbench-dispatcher")
    mounted = _mount_secrets(docs, tmp_path)
    dargs = [mounted(arg) for arg in dispatcher["spec"]["template"]["spec"]["containers"][0]["args"]]
    assert _after(dargs, "--kube-namespace") == NAMESPACE
    # The chart's TLS certificate and tokens as well (the stand-in cluster's grader is its own, plain).
    security = [arg for flag in ("--tls-cert", "--tls-key", "--auth-token-file", "--read-token-file")
                for arg in (flag, _after(dargs, flag))]
    c.start_dispatcher("--instance-name", _after(dargs, "--instance-name"), "--gpu-budget", _after(dargs, "--gpu-budget"),
                       "--ready-timeout", _after(dargs, "--ready-timeout"), *security)
    cronjob = next(d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "anesbench-qwen3-8b")
    args = [mounted(arg) for arg in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    assert c.dispatcher is not None
    args[args.index("--dispatcher") + 1] = c.dispatcher.address
    args[args.index("--run-id") + 1] = "anesbench-qwen3-8b-29112233"
    result = run_cli(*args, timeout=180)
    assert result.returncode == 0 and "status=completed" in result.stdout, result.stderr + c.log()
    events = c.wait_events(lambda e: "anesbench-qwen3-8b:stopped" in e)
    assert events == ["anesbench-qwen3-8b:started", "anesbench-qwen3-8b:ready", "anesbench-qwen3-8b:stopped"]
    marked = c.object("anesbench-qwen3-8b")["metadata"]["annotations"]
    assert marked["serving.kserve.io/stop"] == "true" and "anesbench.io/started-by" not in marked


def test_restart_during_the_grace_period_still_stops_the_model(cluster) -> None:
    c = cluster({"m1": True})
    first = c.start_dispatcher("--model-idle-seconds", "300")
    code, _out, err = _finish(c.run("m1", "--run-id", "g1"))
    assert code == 0, err
    assert c.events("m1") == ["started", "ready"]  # idle, kept up for its grace period
    assert first.stop(signal.SIGTERM) == 0
    assert c.object("m1")["metadata"]["annotations"]["anesbench.io/started-by"] == OWNER
    c.start_dispatcher()  # grace 1 s: adopts the model no run needs and stops it
    assert c.wait_events(lambda e: "m1:stopped" in e) == ["m1:started", "m1:ready", "m1:stopped"]
