"""A dispatcher refuses, before storing anything, an upload larger than --max-upload-bytes and any new
run once its store would pass --store-budget-bytes: RESOURCE_EXHAUSTED, never a full volume."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from tests.conftest import SAMPLE
from tests.procs import CLI, run_cli, start, start_grader, start_standin


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--max-upload-bytes", "1000", "more than this dispatcher accepts (1000, its --max-upload-bytes)"),
    ("--store-budget-bytes", "1000", "would pass its budget of 1000 bytes (--store-budget-bytes)"),
])
def test_quota_refuses_the_run_and_stores_nothing(tmp_path: Path, flag: str, value: str, says: str) -> None:
    standin = start_standin("--answer-key", str(SAMPLE))
    grader, _ = start_grader()
    db = tmp_path / "q.duckdb"
    dispatcher = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", "0", "--grader", grader.address,
                        "--db", str(db), flag, value])
    try:
        done = run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", standin.address, "--model", "standin",
                       "--dataset", str(SAMPLE), "--run-id", "quota",
                       env={"ANESBENCH_DISPATCHER_TOKEN": "", "ANESBENCH_DISPATCHER_CA": ""})
        assert done.returncode == 1 and says in done.stderr, done.stderr
        with grpc.insecure_channel(dispatcher.address) as channel:
            stub = dispatcher_pb2_grpc.DispatcherStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetRun(pb.GetRunRequest(run_id="quota"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND  # no run row, no upload kept
    finally:
        for proc in (dispatcher, grader, standin):
            proc.stop()
