"""Faults of real deployments, each reproduced against the real CLI and the stand-in server.

A model that is not up, a wrong model name or port, a server that goes away mid-run, a reply the
grader cannot handle and a store that cannot write: each ends in one clear message, the right exit
code, and either nothing written or a run that resumes exactly.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import make_records
from tests.procs import CLI, ROOT, Proc, run_cli, standin_stats, start, start_standin
from tests.waiting import wait_until


@pytest.fixture
def make_standin() -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def make(*options: str) -> Proc:
        started.append(start_standin(*options))
        return started[-1]

    yield make
    for proc in started:
        proc.stop(signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(endpoint: str, dataset: Path, db: Path, *extra: str, model: str = "standin",
         timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--endpoint", endpoint, "--model", model, "--dataset", str(dataset), "--db", str(db),
                   *extra, timeout=timeout)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _clean(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


# --- preflight ------------------------------------------------------------------------------------

def test_port_out_of_range_is_bad_input_naming_the_endpoint(write_jsonl, tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    result = _run("http://127.0.0.1:99999/v1", write_jsonl(make_records(3)), db)
    _clean(result, 2)
    assert "--endpoint: the port must be a number from 1 to 65535: 'http://127.0.0.1:99999/v1'" in result.stderr
    assert not db.exists()


def test_server_down_from_the_start_fails_at_once_without_a_run_row(write_jsonl, tmp_path: Path) -> None:
    db = tmp_path / "down.duckdb"
    url = f"http://127.0.0.1:{_free_port()}/v1"
    result = _run(url, write_jsonl(make_records(66)), db)
    _clean(result, 1)
    # The preflight's verdict, before any item was tried (else: 66 items x 6 attempts with backoff, and a run row).
    assert f"endpoint {url} not ready after 0 s: cannot connect" in result.stderr
    assert "cannot connect" in result.stderr and result.stderr.rstrip().endswith(
        "(set --wait-ready to wait for a server that is still starting)"), result.stderr
    assert not db.exists()
    waited = _run(url, write_jsonl(make_records(3)), db, "--wait-ready", "2")
    _clean(waited, 1)
    assert f"endpoint {url} not ready after 2 s: cannot connect" in waited.stderr
    assert "waiting for the endpoint to be ready" in waited.stderr
    assert not db.exists()


def test_wait_ready_rides_out_a_cold_start(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin("--not-ready-seconds", "3")
    db = tmp_path / "cold.duckdb"
    result = _run(proc.address, write_jsonl(make_records(5)), db, "--wait-ready", "60")
    _clean(result, 0)
    assert "waiting for the endpoint to be ready" in result.stderr and "HTTP 503" in result.stderr
    stats = standin_stats(proc.address)
    assert stats["outcomes"]["not_ready"] >= 1 and stats["answered"] == 5  # not one request while loading
    assert _rows(db, "SELECT status, count(*) FROM runs GROUP BY status") == [("completed", 1)]


def test_cold_start_longer_than_wait_ready_writes_nothing(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin("--not-ready-seconds", "600")
    db = tmp_path / "cold.duckdb"
    result = _run(proc.address, write_jsonl(make_records(5)), db, "--wait-ready", "1")
    _clean(result, 1)
    assert f"endpoint {proc.address} not ready after 1 s: /health answered HTTP 503" in result.stderr
    assert not db.exists()
    assert standin_stats(proc.address)["requests"] == 0


def test_wrong_model_name_names_the_served_models(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin("--served-model", "Qwen/Qwen3-8B,Qwen/Qwen3-32B")
    db = tmp_path / "m.duckdb"
    result = _run(proc.address, write_jsonl(make_records(3)), db, model="Qwen/Qwen3-8b")
    _clean(result, 2)
    assert f"--model: 'Qwen/Qwen3-8b' is not served by {proc.address}; it serves 'Qwen/Qwen3-8B', " \
           "'Qwen/Qwen3-32B'" in result.stderr
    assert not db.exists()
    assert standin_stats(proc.address)["requests"] == 0


def test_a_refused_api_key_is_bad_input_before_anything_is_sent(write_jsonl, tmp_path: Path) -> None:
    proc = start_standin("--require-api-key-env", "STANDIN_KEY", env={"STANDIN_KEY": "sk-right"})
    try:
        result = run_cli("run", "--endpoint", proc.address, "--model", "standin", "--dataset",
                         str(write_jsonl(make_records(3))), "--db", str(tmp_path / "k.duckdb"),
                         env={"ANESBENCH_API_KEY": "sk-wrong"})
        stats = standin_stats(proc.address)
    finally:
        proc.stop(signal.SIGKILL)
    _clean(result, 2)
    assert f"--endpoint: {proc.address} refuses the API key (HTTP 401" in result.stderr
    assert "sk-wrong" not in result.stderr
    assert stats["requests"] == 0 and not (tmp_path / "k.duckdb").exists()


def test_base_url_without_v1_gets_a_hint(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin()
    root = proc.address.removesuffix("/v1")
    result = _run(root, write_jsonl(make_records(3)), tmp_path / "h.duckdb")
    _clean(result, 2)
    assert f"base URL usually ends in /v1: try {root}/v1" in result.stderr
    assert not (tmp_path / "h.duckdb").exists()


def test_limit_and_progress_lines_without_a_terminal(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin("--latency-ms", "100")
    db = tmp_path / "l.duckdb"
    result = run_cli("run", "--endpoint", proc.address, "--model", "standin", "--dataset",
                     str(write_jsonl(make_records(50))), "--db", str(db), "--limit", "10", "--languages", "en,zh",
                     "--concurrency", "2", env={"ANESBENCH_PROGRESS_INTERVAL": "0.2"})
    _clean(result, 0)
    assert _rows(db, "SELECT total, count(*) FROM runs JOIN results ON run_id = id GROUP BY total") == [(20, 20)]
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, result.stderr
    assert all("/20 (" in line and "items/s ETA" in line and "accuracy" in line and "errors 0" in line
               for line in lines)


# --- the endpoint goes away mid-run ----------------------------------------------------------------

def test_server_down_at_30_percent_stops_fast_then_resumes_exactly(write_jsonl, tmp_path: Path) -> None:
    port = _free_port()
    options = ("--port", str(port), "--latency-ms", "40")
    command = [sys.executable, "-m", "anesbench_testkit.standin", "--host", "127.0.0.1", *options]
    data = write_jsonl(make_records(100))
    db = tmp_path / "outage.duckdb"
    # 100 attempts per item, with backoff, would take minutes: the run can only stop within the timeout below
    # because the breaker opened (20 failed attempts in a row), and then no item is failed on its own.
    args = [*CLI, "run", "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "standin", "--dataset", str(data),
            "--db", str(db), "--run-id", "outage", "--concurrency", "4", "--max-attempts", "100",
            "--elicit", "off"]  # replies only: exact counts
    server = start(command)
    victim = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: standin_stats(server.address)["answered"] >= 30, "30 answers before the outage")
        server.stop(signal.SIGKILL)
        _, err = victim.communicate(timeout=60)
    finally:
        victim.kill()
        server.stop(signal.SIGKILL)
    assert victim.returncode == 1, err
    assert f"run outage failed: endpoint http://127.0.0.1:{port}/v1 unreachable since " in err, err
    assert "Traceback" not in err
    status, error = _rows(db, "SELECT status, error FROM runs")[0]
    assert status == "failed" and "unreachable since" in error
    table = run_cli("runs", "--db", str(db)).stdout
    assert "failed" in table and "error" in table.splitlines()[0] and f"endpoint http://127.0.0.1:{port}/v1" in table
    assert _rows(db, "SELECT count(*) FROM results WHERE error IS NOT NULL") == [(0,)]
    answered_first = _rows(db, "SELECT count(*) FROM results")[0][0]
    assert 30 <= answered_first < 100

    server = start(command)  # the server is back on the same port: the same command resumes
    try:
        resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
        stats = standin_stats(server.address)
    finally:
        server.stop(signal.SIGKILL)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(db, "SELECT count(*), count(DISTINCT item_id) FROM results WHERE error IS NULL") == [(100, 100)]
    assert _rows(db, "SELECT count(*) FROM results") == [(100,)]
    # Every stored answer was asked for once: the resume sent exactly the ones the first run lacked.
    assert stats["answered"] == 100 - answered_first and stats["answered_more_than_once"] == 0


def test_one_dead_replica_of_two_does_not_trip_the_breaker(make_standin, write_jsonl, tmp_path: Path) -> None:
    alive = make_standin("--latency-ms", "5")
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    db = tmp_path / "two.duckdb"
    # The dead one is down from the start: preflight warns and starts on the other.
    result = run_cli("run", "--endpoint", dead, "--endpoint", alive.address, "--model", "standin", "--dataset",
                     str(write_jsonl(make_records(60))), "--db", str(db), "--concurrency", "8")
    _clean(result, 0)
    assert f"warning: endpoint {dead} is not ready" in result.stderr
    assert _rows(db, "SELECT count(*) FROM results WHERE error IS NULL") == [(60,)]


# --- one bad item never sinks a run ----------------------------------------------------------------

def test_a_2_mib_reply_mid_run_is_recorded_as_ungradable_and_the_run_goes_on(make_standin, write_jsonl,
                                                                             tmp_path: Path) -> None:
    proc = make_standin("--huge-reply-rate", "0.1", "--huge-reply-bytes", str(2 << 20))
    db = tmp_path / "huge.duckdb"
    # --elicit off: the rules' verdict on each reply is what this test reads
    result = _run(proc.address, write_jsonl(make_records(40)), db, "--concurrency", "4", "--elicit", "off")
    _clean(result, 0)
    huge = _rows(db, "SELECT count(*) FROM results WHERE length(response) > 1048576")[0][0]
    assert huge >= 1
    assert _rows(db, "SELECT count(*) FROM results WHERE method = 'none_ungradable' AND pred IS NULL "
                     "AND error IS NULL AND length(response) > 1048576") == [(huge,)]
    assert _rows(db, "SELECT count(*), count(*) FILTER (WHERE error IS NULL) FROM results") == [(40, 40)]
    assert _rows(db, "SELECT status FROM runs") == [("completed",)]


# --- the store is the truth ------------------------------------------------------------------------

def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG (a full disk, for DuckDB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_store_that_cannot_write_mid_run_stops_the_run(make_standin, write_jsonl, tmp_path: Path) -> None:
    proc = make_standin("--latency-ms", "10")
    db = tmp_path / "full.duckdb"
    args = [*CLI, "run", "--endpoint", proc.address, "--model", "standin", "--dataset",
            str(write_jsonl(make_records(3000))), "--db", str(db), "--run-id", "full", "--concurrency", "8",
            "--elicit", "off"]  # replies only: exact counts
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120,
                            preexec_fn=_file_size_limit(400_000))
    _clean(result, 1)
    assert "the result store cannot write" in result.stderr and "File too large" in result.stderr, result.stderr
    answered = standin_stats(proc.address)["answered"]
    stored = _rows(db, "SELECT count(*) FROM results")[0][0]
    assert 0 < stored <= answered < 3000  # the run stopped sending before its end (how soon: test_store_failure.py)
    status, error = _rows(db, "SELECT status, error FROM runs")[0]
    if "the run could not be marked failed" in result.stderr:
        # The disk stayed full for the status update too (it depends on how much of the WAL the failed
        # batch used): the record is left as it was, and the CLI says so instead of claiming otherwise.
        assert (status, error) == ("running", None), result.stderr
        assert "run again with the same --run-id once the store can write" in result.stderr
    else:
        assert status == "failed" and "File too large" in error, result.stderr
    # Once the store can write again, the same command finishes the run.
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    _clean(again, 0)
    assert _rows(db, "SELECT count(*), count(DISTINCT item_id) FROM results WHERE error IS NULL") == [(3000, 3000)]
    # It asked again for exactly the answers the full store lost, and for none it had kept.
    stats = standin_stats(proc.address)
    assert (stats["answered"], stats["answered_more_than_once"]) == (answered + 3000 - stored, answered - stored)


def test_kill_9_mid_run_resends_exactly_the_answers_not_yet_stored(make_standin, write_jsonl, tmp_path: Path) -> None:
    """64 in flight at 640 answers/s: a kill -9 loses only what was in flight or not yet written, and the
    resumed run asks again for exactly that."""
    proc = make_standin("--latency-ms", "100")
    db = tmp_path / "k.duckdb"
    data = write_jsonl(make_records(2000))
    args = [*CLI, "run", "--endpoint", proc.address, "--model", "standin", "--dataset", str(data), "--db", str(db),
            "--run-id", "k", "--concurrency", "64", "--elicit", "off"]  # replies only: exact counts
    victim = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: standin_stats(proc.address)["answered"] >= 600, "600 answers before the kill")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # The requests the victim left in flight still end on the stand-in's side: count them as answered too.
    answered = wait_until(lambda: (stats := standin_stats(proc.address))["inflight"] == 0 and stats["answered"],
                          "the stand-in to finish the requests the killed run left in flight")
    stored = _rows(db, "SELECT count(*) FROM results")[0][0]
    assert 0 < stored <= answered < 2000
    assert _rows(db, "SELECT status FROM runs") == [("running",)]  # nobody could say otherwise yet
    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    _clean(resumed, 0)
    # The next process to open the file for writing knows nobody runs it any more, and says so.
    assert "warning: run k was left unfinished by a process that stopped; marked failed" in resumed.stderr
    assert _rows(db, "SELECT status FROM runs") == [("completed",)]
    stats = standin_stats(proc.address)
    print(f"kill -9 at 640 answers/s: {answered - stored} answers lost and re-sent (64 in flight)")
    assert (stats["answered"], stats["answered_more_than_once"]) == (answered + 2000 - stored, answered - stored)
    assert _rows(db, "SELECT count(*), count(DISTINCT item_id) FROM results") == [(2000, 2000)]
