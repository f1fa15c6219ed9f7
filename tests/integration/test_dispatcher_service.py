"""The dispatcher and grader as real processes on loopback, driven by the CLI and a real gRPC client."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from tests.conftest import SAMPLE, SAMPLE_ITEMS, make_records
from tests.integration.prometheus import Prometheus
from tests.procs import (
    CLI,
    Proc,
    metric,
    popen,
    run_cli,
    standin_control,
    standin_stats,
    start_dispatcher,
    start_grader,
    start_standin,
)
from tests.waiting import wait_until

ITEMS = SAMPLE_ITEMS


@dataclass
class Stack:
    standin: Proc
    grader: Proc
    grader_metrics: str
    dispatcher: Proc
    dispatcher_metrics: str
    db: Path
    datasets: Path

    def restart_dispatcher(self) -> None:
        self.dispatcher, self.dispatcher_metrics = start_dispatcher(
            self.grader.address, self.db, "--datasets-dir", str(self.datasets),
            port=int(self.dispatcher.address.rsplit(":", 1)[1]))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    shutil.copy(SAMPLE, datasets / "anesbench.jsonl")
    started: list[Proc] = []  # stopped at the end, also when a later one fails to start
    try:
        started.append(start_standin("--answer-key", str(SAMPLE), "--latency-ms", "5",
                                     "--served-model", "standin,model-0,model-1,model-2"))
        grader, grader_metrics = start_grader()
        started.append(grader)
        dispatcher, dispatcher_metrics = start_dispatcher(grader.address, tmp_path / "d.duckdb",
                                                          "--datasets-dir", str(datasets))
        started.append(dispatcher)
        s = Stack(started[0], grader, grader_metrics, dispatcher, dispatcher_metrics, tmp_path / "d.duckdb",
                  datasets)
        yield s
        started = [s.standin, s.grader, s.dispatcher]  # tests may have restarted some
    finally:
        for proc in reversed(started):
            proc.stop()


def _run(stack: Stack, *extra: str, dataset: str = str(SAMPLE)) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--dispatcher", stack.dispatcher.address, "--endpoint", stack.standin.address,
                   "--model", "standin", "--dataset", dataset, *extra, timeout=180)


def _board(*args: str) -> list[dict]:
    result = run_cli("leaderboard", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return [{k: v for k, v in row.items() if k not in ("run_id", "dataset")} for row in json.loads(result.stdout)]


def _stub(stack: Stack) -> dispatcher_pb2_grpc.DispatcherStub:
    return dispatcher_pb2_grpc.DispatcherStub(grpc.insecure_channel(stack.dispatcher.address))


def _follow(stack: Stack, run_id: str, *extra: str) -> subprocess.Popen[str]:
    """`anesbench run --dispatcher` on the named dataset, in the background."""
    return popen([*CLI, "run", "--dispatcher", stack.dispatcher.address, "--endpoint", stack.standin.address,
                  "--model", "standin", "--dataset", "anesbench", "--run-id", run_id, *extra],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_answered(stack: Stack, count: int, timeout: float = 60) -> None:
    wait_until(lambda: standin_stats(stack.standin.address)["answered"] >= count,
               f"the stand-in answers {count} requests", timeout=timeout)


def _wait_final(stub: dispatcher_pb2_grpc.DispatcherStub, run_id: str, timeout: float = 120) -> pb.Run:
    def final() -> pb.Run | None:
        try:
            run = stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=5, wait_for_ready=True)
        except grpc.RpcError:
            return None  # the dispatcher is still starting
        return run if run.status in (pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED) else None

    return wait_until(final, f"run {run_id} to finish", timeout=timeout, interval=0.2)


def test_run_through_dispatcher_equals_embedded_run(stack: Stack, tmp_path: Path) -> None:
    result = _run(stack, "--languages", "en,zh", "--run-id", "remote", "--concurrency", "16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"run_id=remote status=completed done={2 * ITEMS} total={2 * ITEMS}")
    embedded_db = tmp_path / "embedded.duckdb"
    embedded = run_cli("run", "--endpoint", stack.standin.address, "--model", "standin", "--dataset", str(SAMPLE),
                       "--languages", "en,zh", "--db", str(embedded_db))
    assert embedded.returncode == 0, embedded.stderr
    assert _board("--dispatcher", stack.dispatcher.address) == _board("--db", str(embedded_db))
    runs = json.loads(run_cli("runs", "--dispatcher", stack.dispatcher.address, "--format", "json").stdout)
    assert [(r["id"], r["status"], r["done"]) for r in runs] == [("remote", "completed", 2 * ITEMS)]


def test_a_run_id_is_idempotent_for_its_configuration_and_refused_for_another(stack: Stack) -> None:
    first = _run(stack, "--languages", "en,zh", "--run-id", "remote", "--concurrency", "16")
    assert first.returncode == 0, first.stderr
    # Same id, same configuration: idempotent, nothing is sent again.
    answered = standin_stats(stack.standin.address)["answered"]
    again = _run(stack, "--languages", "en,zh", "--run-id", "remote", "--concurrency", "16")
    assert again.returncode == 0 and standin_stats(stack.standin.address)["answered"] == answered
    conflict = _run(stack, "--languages", "en", "--run-id", "remote")
    assert conflict.returncode == 2, conflict.stderr
    # the store's field and message, named on the client as its own option
    error = conflict.stderr.strip().splitlines()[-1]
    assert error.startswith("error: --run-id: a run 'remote' exists with a different configuration (") and \
        error.endswith("); use another id"), error


def test_named_dataset_from_the_datasets_dir(stack: Stack) -> None:
    result = _run(stack, "--run-id", "named", dataset="anesbench")
    assert result.returncode == 0, result.stderr
    missing = _run(stack, dataset="nothere")
    assert missing.returncode == 2 and "no dataset 'nothere'" in missing.stderr and "anesbench" in missing.stderr


def test_health_and_reflection(stack: Stack) -> None:
    channel = grpc.insecure_channel(stack.dispatcher.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "anesbench.v1.Dispatcher"):
        # NOT_SERVING while it resumes unfinished runs, then SERVING.
        wait_until(lambda service=service: health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                   .status == health_pb2.HealthCheckResponse.SERVING, f"health of {service!r} is SERVING")
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"anesbench.v1.Dispatcher", "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize(
    ("request_", "code", "needle"),
    [
        (pb.StartRunRequest(), grpc.StatusCode.INVALID_ARGUMENT, "spec: missing"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1")),
         grpc.StatusCode.INVALID_ARGUMENT, "give either upload or dataset_name"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://10.1.2.3/v1"), dataset_name="anesbench"),
         grpc.StatusCode.PERMISSION_DENIED, "not a loopback address"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1"),
                            dataset_name="../../etc/passwd"), grpc.StatusCode.INVALID_ARGUMENT, "not a dataset name"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1",
                                            prompt_template="/etc/passwd"), dataset_name="anesbench"),
         grpc.StatusCode.INVALID_ARGUMENT, "no bundled template"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1", languages=["xx"]),
                            dataset_name="anesbench"), grpc.StatusCode.INVALID_ARGUMENT, "unknown language"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1"), upload=pb.DatasetUpload(
            name="u", items=[pb.Item(id="a", choice_num=4, answer="Z", level=1, texts={
                "en": pb.LocalizedQuestion(question="q", options={"A": "1", "B": "2", "C": "3", "D": "4"})})])),
         grpc.StatusCode.INVALID_ARGUMENT, "upload item #0 (id a): field 'answer'"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1", concurrency=-5),
                            dataset_name="anesbench"), grpc.StatusCode.INVALID_ARGUMENT,
         "spec.concurrency: must be from 1 to 4096, got -5"),
        (pb.StartRunRequest(spec=pb.RunSpec(model="m", endpoint="http://127.0.0.1:9/v1"),
                            dataset_name="nothere"), grpc.StatusCode.NOT_FOUND, "no dataset 'nothere'"),
    ],
)
def test_bad_requests_get_precise_errors_and_the_server_keeps_serving(
    stack: Stack, request_: pb.StartRunRequest, code: grpc.StatusCode, needle: str
) -> None:
    stub = _stub(stack)
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartRun(request_, timeout=10)
    assert caught.value.code() == code
    assert needle in caught.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetRun(pb.GetRunRequest(run_id="nope"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.ListRuns(pb.ListRunsRequest(), timeout=10).runs == []


def test_concurrent_runs_share_the_endpoint_and_all_finish(stack: Stack, write_jsonl) -> None:
    standin_control(stack.standin.address, latency_ms=20)
    data = write_jsonl(make_records(60), "many.jsonl")
    procs = [popen([*CLI, "run", "--dispatcher", stack.dispatcher.address, "--endpoint", stack.standin.address,
                    "--model", f"model-{n}", "--dataset", str(data), "--concurrency", "8", "--run-id", f"c{n}"],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert standin_stats(stack.standin.address)["max_inflight"] <= 8
    runs = json.loads(run_cli("runs", "--dispatcher", stack.dispatcher.address, "--format", "json").stdout)
    assert sorted((r["id"], r["done"]) for r in runs) == [("c0", 60), ("c1", 60), ("c2", 60)]


def test_sigterm_mid_run_then_restart_finishes_with_one_result_per_key(stack: Stack) -> None:
    standin_control(stack.standin.address, latency_ms=40)
    stub = _stub(stack)
    follower = _follow(stack, "drain", "--languages", "en,zh", "--concurrency", "8")
    _wait_answered(stack, 40)
    # Exit code 0 by itself: Proc.stop kills a dispatcher that has not drained within its timeout (-9).
    assert stack.dispatcher.stop(signal.SIGTERM) == 0
    assert standin_stats(stack.standin.address)["answered"] < 2 * ITEMS  # it stopped sending, not ran to the end
    stack.restart_dispatcher()
    _out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    run = _wait_final(_stub(stack), "drain")
    assert (run.status, run.done, run.total) == (pb.RUN_STATUS_COMPLETED, 2 * ITEMS, 2 * ITEMS)
    stack.dispatcher.stop()
    import duckdb

    with duckdb.connect(str(stack.db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT (item_id, language, sample)) FROM results").fetchall() \
            == [(2 * ITEMS, 2 * ITEMS)]
    del stub


def test_grader_killed_mid_run_then_back_the_run_completes(stack: Stack) -> None:
    concurrency = 8
    standin_control(stack.standin.address, latency_ms=30)
    follower = _follow(stack, "gk", "--languages", "en,zh", "--concurrency", str(concurrency))
    _wait_answered(stack, 30)
    port = int(stack.grader.address.rsplit(":", 1)[1])
    stack.grader.stop(signal.SIGKILL)
    # The outage reaches the run: every worker has its answer and waits for the dead grader.
    wait_until(lambda: metric(stack.dispatcher_metrics, "anesbench_grade_queue_depth") >= concurrency,
               f"{concurrency} answers wait for the grader")
    assert follower.poll() is None
    stack.grader, stack.grader_metrics = start_grader(port)
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    assert f"done={2 * ITEMS} total={2 * ITEMS} failed=0" in out


def test_prometheus_scrapes_both_services_during_a_run(stack: Stack) -> None:
    with Prometheus([stack.dispatcher_metrics, stack.grader_metrics]) as prom:
        result = _run(stack, "--languages", "en,zh", "--run-id", "scraped")
        assert result.returncode == 0, result.stderr
        graded = prom.wait_for_value("sum(anesbench_items_graded_total)", lambda v: v >= 2 * ITEMS, timeout=30)
        assert graded == 2 * ITEMS
        by_method = prom.wait_for_value("sum(anesbench_grader_items_total)", lambda v: v >= 2 * ITEMS, timeout=30)
        assert by_method == 2 * ITEMS
        sent = 2 * ITEMS + standin_stats(stack.standin.address)["follow_ups"]  # replies and follow-up turns
        ok = prom.wait_for_value('sum(anesbench_inference_requests_total{outcome="ok"})',
                                 lambda v: v >= sent, timeout=30)
        assert ok == sent


def test_metrics_pass_promtool(stack: Stack) -> None:
    assert _run(stack, "--run-id", "m").returncode == 0
    import urllib.request

    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/install-tools.sh (Debian package prometheus)"
    for address in (stack.dispatcher_metrics, stack.grader_metrics):
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read()
        assert b"anesbench_" in text
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr


def test_cancel_keeps_finished_results(stack: Stack) -> None:
    # 66 items x 1 s / 4 in flight = 16 s: the cancel (a new CLI process on a loaded machine) lands mid-run.
    standin_control(stack.standin.address, latency_ms=1000)
    follower = _follow(stack, "cx", "--concurrency", "4")
    _wait_answered(stack, 8, timeout=30)
    cancelled = run_cli("cancel", "cx", "--dispatcher", stack.dispatcher.address)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    out, _err = follower.communicate(timeout=60)
    assert follower.returncode == 1 and "status=cancelled" in out
    run = _stub(stack).GetRun(pb.GetRunRequest(run_id="cx"), timeout=5)
    assert run.status == pb.RUN_STATUS_CANCELLED and 0 < run.done < run.total


def test_ctrl_c_detaches_and_the_run_goes_on(stack: Stack) -> None:
    standin_control(stack.standin.address, latency_ms=100)
    follower = _follow(stack, "detached", "--concurrency", "4")
    _wait_answered(stack, 4, timeout=30)
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert "detached: run detached goes on in the dispatcher" in err and "Traceback" not in err
    standin_control(stack.standin.address, latency_ms=5)
    run = _wait_final(_stub(stack), "detached")
    assert (run.status, run.done) == (pb.RUN_STATUS_COMPLETED, ITEMS)
