"""Faults of real deployments through the dispatcher: its preflight, and a grader that stays down beyond its grace."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLE, SAMPLE_ITEMS, make_records
from tests.procs import (
    CLI,
    ROOT,
    Proc,
    run_cli,
    standin_control,
    standin_stats,
    start_dispatcher,
    start_grader,
    start_standin,
)
from tests.waiting import wait_until

ITEMS = SAMPLE_ITEMS
GRACE = 3.0


@dataclass
class Stack:
    standin: Proc
    grader: Proc
    dispatcher: Proc
    db: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    standin = start_standin("--answer-key", str(SAMPLE), "--latency-ms", "30", "--served-model", "standin")
    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, tmp_path / "d.duckdb", "--grader-grace", str(GRACE))
    s = Stack(standin, grader, dispatcher, tmp_path / "d.duckdb")
    yield s
    for proc in (s.dispatcher, s.grader, s.standin):
        proc.stop(signal.SIGKILL)


def _run(stack: Stack, *extra: str, endpoint: str | None = None, model: str = "standin",
         dataset: str = str(SAMPLE)) -> list[str]:
    return [*CLI, "run", "--dispatcher", stack.dispatcher.address, "--endpoint", endpoint or stack.standin.address,
            "--model", model, "--dataset", dataset, *extra]


def _runs(stack: Stack) -> list[dict]:
    result = run_cli("runs", "--dispatcher", stack.dispatcher.address, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dispatcher_preflight_refuses_before_a_run_exists(stack: Stack, write_jsonl) -> None:
    data = str(write_jsonl(make_records(4)))
    wrong = subprocess.run(_run(stack, "--run-id", "w", model="nope", dataset=data), cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2, wrong.stderr
    assert f"--model: 'nope' is not served by {stack.standin.address}; it serves 'standin'" in wrong.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    started = subprocess.run(_run(stack, "--run-id", "d", "--wait-ready", "1", endpoint=down, dataset=data),
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert started.returncode == 1, started.stderr
    assert f"endpoint {down} not ready after 1 s: cannot connect" in started.stderr
    assert "Traceback" not in started.stderr + wrong.stderr
    assert _runs(stack) == []
    assert standin_stats(stack.standin.address)["requests"] == 0


def test_grader_down_beyond_its_grace_fails_the_run_with_that_cause_then_resumes(stack: Stack) -> None:
    args = _run(stack, "--languages", "en,zh", "--concurrency", "8", "--run-id", "gd")
    follower = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: standin_stats(stack.standin.address)["answered"] >= 30, "30 answers before the grader dies")
    port = int(stack.grader.address.rsplit(":", 1)[1])
    stack.grader.stop(signal.SIGKILL)
    _, err = follower.communicate(timeout=120)
    assert follower.returncode == 1, err
    assert "run gd failed: grader unavailable (the model's answers are not at fault)" in err, err
    assert "internal error" not in err and "TaskGroup" not in err and "Traceback" not in err
    (run,) = _runs(stack)
    assert run["status"] == "failed" and "grader unavailable" in run["error"]
    assert run["done"] < 2 * ITEMS and run["failed"] == 0  # nothing blamed on the model
    stack.grader, _ = start_grader(port)
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert f"done={2 * ITEMS} total={2 * ITEMS} failed=0" in again.stdout
    stack.dispatcher.stop()
    with duckdb.connect(str(stack.db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT (item_id, language)) FROM results").fetchall() == [
            (2 * ITEMS, 2 * ITEMS)
        ]


def test_a_2_mib_reply_is_ungradable_on_its_row_and_the_run_completes(stack: Stack, write_jsonl) -> None:
    standin_control(stack.standin.address, huge_reply_rate=0.15, latency_ms=0)
    result = subprocess.run(_run(stack, "--run-id", "huge", dataset=str(write_jsonl(make_records(40)))), cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "done=40 total=40 failed=0" in result.stdout
    stack.dispatcher.stop()
    with duckdb.connect(str(stack.db), read_only=True) as con:
        huge, ungradable = con.execute(
            "SELECT count(*) FILTER (WHERE length(response) > 1048576), "
            # the rules' verdict (the follow-up turn may then give the letter: the rules could not read the reply)
            "count(*) FILTER (WHERE method_rules = 'none_ungradable' AND pred_rules IS NULL AND error IS NULL) "
            "FROM results"
        ).fetchone()
    assert huge >= 1 and ungradable == huge


def test_dispatcher_waits_for_a_cold_endpoint_and_limit_cuts_the_run(stack: Stack) -> None:
    standin_control(stack.standin.address, not_ready_seconds=10_000)  # loading its weights
    follower = subprocess.Popen(_run(stack, "--run-id", "cold", "--wait-ready", "120", "--limit", "5",
                                     "--languages", "en,zh"),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: standin_stats(stack.standin.address)["outcomes"].get("not_ready", 0) >= 2,
               "two requests refused while the endpoint loads")
    assert _runs(stack) == []  # nothing stored while the endpoint is not ready
    standin_control(stack.standin.address, not_ready_seconds=0)  # ready
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    assert "done=10 total=10 failed=0" in out
    assert standin_stats(stack.standin.address)["answered"] == 10
