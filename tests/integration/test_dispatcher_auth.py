"""Optional bearer-token authentication of the dispatcher's API: without the token every Dispatcher RPC
fails UNAUTHENTICATED (the CLI exits 2 saying what to set), with it runs work; health stays open."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from tests.conftest import SAMPLE
from tests.procs import CLI, run_cli, start, start_grader, start_standin
from tests.waiting import wait_until

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def stack(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    standin = start_standin("--answer-key", str(SAMPLE))
    grader, _ = start_grader()
    dispatcher = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", "0", "--grader", grader.address,
                        "--db", str(tmp_path / "d.duckdb"), "--auth-token-file", str(token_file)])
    yield standin, dispatcher, token_file
    for proc in (dispatcher, grader, standin):
        proc.stop()


def test_runs_need_the_token(stack) -> None:
    standin, dispatcher, token_file = stack
    args = ("run", "--dispatcher", dispatcher.address, "--endpoint", standin.address, "--model", "standin",
            "--dataset", str(SAMPLE), "--run-id", "auth")
    refused = run_cli(*args, env={"ANESBENCH_DISPATCHER_TOKEN": ""})
    assert refused.returncode == 2 and "requires a bearer token" in refused.stderr, refused.stderr
    wrong = run_cli(*args, env={"ANESBENCH_DISPATCHER_TOKEN": "guess"})
    assert wrong.returncode == 2 and "requires a bearer token" in wrong.stderr
    listed = run_cli("runs", "--dispatcher", dispatcher.address, env={"ANESBENCH_DISPATCHER_TOKEN": ""})
    assert listed.returncode == 2
    ok = run_cli(*args, env={"ANESBENCH_DISPATCHER_TOKEN": TOKEN})
    assert ok.returncode == 0 and "status=completed" in ok.stdout, ok.stderr
    from_file = run_cli("runs", "--dispatcher", dispatcher.address,
                        env={"ANESBENCH_DISPATCHER_TOKEN": "", "ANESBENCH_DISPATCHER_TOKEN_FILE": str(token_file)})
    assert from_file.returncode == 0 and "auth" in from_file.stdout


def test_health_is_open_and_streams_are_refused_too(stack) -> None:
    _standin, dispatcher, _ = stack
    with grpc.insecure_channel(dispatcher.address) as channel:
        # Open without a token; SERVING once the dispatcher has started (it may still be resuming runs).
        health = health_pb2_grpc.HealthStub(channel)
        wait_until(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10, wait_for_ready=True).status
                   == health_pb2.HealthCheckResponse.SERVING, "the dispatcher's health to be SERVING", timeout=60,
                   interval=0.1)
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        with pytest.raises(grpc.RpcError) as unary:
            stub.ListRuns(pb.ListRunsRequest(), timeout=10)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as streaming:
            list(stub.WatchRun(pb.WatchRunRequest(run_id="x"), timeout=10))
        assert streaming.value.code() == grpc.StatusCode.UNAUTHENTICATED
        runs = stub.ListRuns(pb.ListRunsRequest(), timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert list(runs.runs) == []


def test_each_endpoint_gets_its_own_api_key(tmp_path: Path) -> None:
    """Two servers requiring different keys: each receives only its own (a shared key would fail one)."""
    keys = {"a": "key-for-a", "b": "key-for-b"}
    standins = {name: start_standin("--answer-key", str(SAMPLE), "--require-api-key-env", "STANDIN_KEY",
                                    env={"STANDIN_KEY": key}) for name, key in keys.items()}
    grader, _ = start_grader()
    args: list[str] = []
    for name, key in keys.items():
        (tmp_path / name).write_text(key)
        args += ["--endpoint-key-file", f"{standins[name].address}={tmp_path / name}",
                 "--allow-endpoint", standins[name].address]
    dispatcher = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", "0", "--grader", grader.address,
                        "--db", str(tmp_path / "d.duckdb"), *args], env={"ANESBENCH_API_KEY": "", "OPENAI_API_KEY": ""})
    try:
        for name in keys:
            result = run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", standins[name].address,
                             "--model", "standin", "--dataset", str(SAMPLE), "--run-id", f"key-{name}",
                             "--max-attempts", "1")
            assert result.returncode == 0 and "status=completed" in result.stdout, result.stdout + result.stderr
        both = run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", standins["a"].address, "--endpoint",
                       standins["b"].address, "--model", "standin", "--dataset", str(SAMPLE))
        assert both.returncode == 2 and "different API keys" in both.stderr
    finally:
        for proc in (dispatcher, grader, *standins.values()):
            proc.stop()
