"""`anesbench run` end to end in embedded mode against the stand-in server, as real processes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from anesbench.engine.runner import FLUSH_INTERVAL
from tests.conftest import SAMPLE, SAMPLE_ITEMS, make_records
from tests.procs import CLI, ROOT, Proc, popen, run_cli, standin_control, standin_intended, standin_stats, start_standin
from tests.waiting import wait_until

ITEMS = SAMPLE_ITEMS


@pytest.fixture
def make_standin() -> Iterator[Callable[..., Proc]]:
    """Start stand-in servers for one test; all are stopped when it ends."""
    started: list[Proc] = []

    def make(*options: str, env: dict[str, str] | None = None) -> Proc:
        started.append(start_standin(*options, env=env))
        return started[-1]

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
def standin(make_standin: Callable[..., Proc]) -> Proc:
    return make_standin("--answer-key", str(SAMPLE), "--latency-ms", "5")


@pytest.fixture
def small(write_jsonl) -> Path:
    return write_jsonl(make_records(12), "small.jsonl")


def _run(endpoint: str, dataset: Path, db: Path, *extra: str, env: dict[str, str] | None = None,
         timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--endpoint", endpoint, "--model", "standin", "--dataset", str(dataset),
                   "--db", str(db), *extra, env=env, timeout=timeout)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _leaderboard(db: Path) -> list[dict]:
    result = run_cli("leaderboard", "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    return [{k: v for k, v in row.items() if k != "run_id"} for row in json.loads(result.stdout)]


class SampleRun:
    """One embedded run of the sample set in both languages, shared by the tests that read it."""

    def __init__(self, standin: Proc, db: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.standin, self.db, self.result = standin, db, result


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleRun]:
    standin = start_standin("--answer-key", str(SAMPLE), "--latency-ms", "5")
    try:
        db = tmp_path_factory.mktemp("sample") / "a.duckdb"
        result = _run(standin.address, SAMPLE, db, "--languages", "en,zh", "--run-id", "sample", "--concurrency", "16")
        assert result.returncode == 0, result.stderr
        yield SampleRun(standin, db, result)
    finally:
        standin.stop()


def test_sample_run_completes_with_one_result_per_item_and_language(sample_run: SampleRun) -> None:
    assert sample_run.result.stdout.startswith("run_id=sample status=completed")
    assert _rows(sample_run.db, "SELECT count(*), count(DISTINCT (item_id, language)) FROM results") == [
        (2 * ITEMS, 2 * ITEMS)
    ]


def test_sample_run_verdicts_agree_with_prediction_and_answer(sample_run: SampleRun) -> None:
    assert _rows(sample_run.db, "SELECT count(*) FROM results "
                                "WHERE correct IS DISTINCT FROM (pred IS NOT NULL AND pred = answer)") == [(0,)]


def test_sample_run_grades_every_reply_as_the_stand_in_wrote_it(sample_run: SampleRun) -> None:
    intended = standin_intended(sample_run.standin.address)
    # the rules' own letter: where they found none, the follow-up turn's letter is the model's, not the reply's
    rows = _rows(sample_run.db, "SELECT request_hash, pred_rules FROM results")
    assert sorted(intended) == sorted(digest for digest, _ in rows)
    assert [(digest, pred) for digest, pred in rows if intended[digest] != [pred]] == []


def test_sample_run_leaderboard_agrees_with_the_rows(sample_run: SampleRun) -> None:
    board = _leaderboard(sample_run.db)
    overall = {row["language"]: row for row in board if row["level"] == "overall"}
    for language in ("en", "zh"):
        correct, unanswered = _rows(sample_run.db, "SELECT count(*) FILTER (WHERE correct), "
                                                   "count(*) FILTER (WHERE pred IS NULL) "
                                                   f"FROM results WHERE language = '{language}'")[0]
        assert (overall[language]["correct"], overall[language]["total"]) == (correct, ITEMS)
        assert overall[language]["unanswered"] == unanswered
    assert {row["level"] for row in board} == {"system1", "system1.x", "system2", "overall"}


def test_sample_run_asks_the_model_once_per_item_and_language(sample_run: SampleRun) -> None:
    stats = standin_stats(sample_run.standin.address)
    # once per item and language, plus one follow-up for each reply the rules found no answer in
    assert stats["answered"] == 2 * ITEMS + stats["follow_ups"] and stats["answered_more_than_once"] == 0


def test_sample_run_keeps_reasoning_apart_and_think_traces_in_the_response(sample_run: SampleRun) -> None:
    # Reasoning models: reasoning_content is kept apart, <think> traces stay in the raw response.
    assert _rows(sample_run.db, "SELECT count(*) > 0 FROM results WHERE reasoning IS NOT NULL") == [(True,)]
    assert _rows(sample_run.db, "SELECT count(*) > 0 FROM results "
                                "WHERE response LIKE '%<think>%' AND pred IS NOT NULL") == [(True,)]


def test_sample_run_records_dataset_and_prompt_identity(sample_run: SampleRun) -> None:
    run = _rows(sample_run.db, "SELECT dataset_sha256, prompt_template, prompt_sha256, status, endpoint FROM runs")[0]
    assert run[1] == "anesbench-cot" and len(run[0]) == len(run[2]) == 64 and run[3] == "completed"


def test_sample_run_leaderboard_as_table_and_markdown(sample_run: SampleRun) -> None:
    table = run_cli("leaderboard", "--db", str(sample_run.db)).stdout
    assert "system1.x" in table and "standin" in table
    markdown = run_cli("leaderboard", "--db", str(sample_run.db), "--format", "markdown").stdout
    header = [cell.strip() for cell in markdown.splitlines()[0].strip("|").split("|")]
    assert header[:7] == ["model", "dataset", "lang", "system1", "system1.x", "system2", "overall"]


def test_sample_run_is_listed_as_done(sample_run: SampleRun) -> None:
    runs = json.loads(run_cli("runs", "--db", str(sample_run.db), "--format", "json").stdout)
    assert runs[0]["id"] == "sample" and runs[0]["done"] == runs[0]["total"] == 2 * ITEMS


@pytest.mark.parametrize(
    ("options", "attempts"),
    [
        (["--fail-first", "2", "--fail-kind", "503"], 3),
        (["--fail-first", "1", "--fail-kind", "reset"], 2),
        (["--fail-first", "1", "--fail-kind", "500"], 2),
        (["--fail-first", "1", "--fail-kind", "garbage"], 2),
    ],
)
def test_transient_failures_are_retried(make_standin, small: Path, tmp_path: Path, options: list[str],
                                        attempts: int) -> None:
    proc = make_standin(*options)
    db = tmp_path / "r.duckdb"
    result = _run(proc.address, small, db, "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    assert _rows(db, "SELECT DISTINCT attempts FROM results") == [(attempts,)]
    assert _rows(db, "SELECT count(*) FROM results WHERE error IS NULL") == [(12,)]


def test_429_retry_after_is_honoured(make_standin, small: Path, tmp_path: Path) -> None:
    proc = make_standin("--fail-first", "1", "--fail-kind", "429", "--retry-after", "1.5")
    db = tmp_path / "r.duckdb"
    result = _run(proc.address, small, db, "--concurrency", "12", "--elicit", "off")  # replies only: exact counts
    assert result.returncode == 0, result.stderr
    assert _rows(db, "SELECT DISTINCT attempts FROM results") == [(2,)]
    # The stand-in answers a request sent again before its Retry-After ran out with another 429.
    assert standin_stats(proc.address)["outcomes"] == {"429": 12, "ok": 12}


def test_hung_request_times_out_and_is_retried(make_standin, small: Path, tmp_path: Path) -> None:
    # A hang far longer than the run's own timeout: only a request timeout lets the run finish at all.
    proc = make_standin("--fail-first", "1", "--fail-kind", "hang", "--hang-seconds", "3600")
    db = tmp_path / "r.duckdb"
    result = _run(proc.address, small, db, "--concurrency", "12", "--request-timeout", "1", "--elicit", "off")
    assert result.returncode == 0, result.stderr
    assert _rows(db, "SELECT DISTINCT attempts FROM results") == [(2,)]
    assert standin_stats(proc.address)["outcomes"] == {"hang": 12, "ok": 12}


def test_client_errors_are_not_retried_and_fail_the_run(make_standin, small: Path, tmp_path: Path) -> None:
    proc = make_standin("--fail-first", "1", "--fail-kind", "400")
    db = tmp_path / "r.duckdb"
    result = _run(proc.address, small, db, "--concurrency", "4", "--run-id", "r400")
    assert result.returncode == 1
    assert "12 of 12 items got no answer" in result.stderr
    assert _rows(db, "SELECT DISTINCT attempts, error LIKE 'HTTP 400%' FROM results") == [(1, True)]
    # The same run id retries only the failed items; this time the server answers them.
    again = _run(proc.address, small, db, "--concurrency", "4", "--run-id", "r400")
    assert again.returncode == 0, again.stderr
    assert _rows(db, "SELECT count(*), count(*) FILTER (WHERE error IS NULL) FROM results") == [(12, 12)]


def test_exhausted_attempts_are_recorded_then_resumed(make_standin, small: Path, tmp_path: Path) -> None:
    # 429s: the server is there but pushes back (an outage, every request a 503, trips the breaker instead).
    proc = make_standin("--fail-first", "100", "--fail-kind", "429")
    db = tmp_path / "r.duckdb"
    first = _run(proc.address, small, db, "--max-attempts", "2", "--run-id", "x")
    assert first.returncode == 1
    assert _rows(db, "SELECT status FROM runs") == [("failed",)]
    assert _rows(db, "SELECT count(*), min(attempts) FROM results WHERE error IS NOT NULL") == [(12, 2)]
    standin_control(proc.address, fail_first=0)
    second = _run(proc.address, small, db, "--max-attempts", "2", "--run-id", "x")
    assert second.returncode == 0, second.stderr
    assert _rows(db, "SELECT count(*) FROM results WHERE error IS NULL") == [(12,)]
    assert _rows(db, "SELECT status FROM runs") == [("completed",)]


def test_api_key_from_environment_is_sent_and_never_stored(make_standin, small: Path, tmp_path: Path) -> None:
    secret = "sk-test-0123456789abcdef"
    proc = make_standin("--require-api-key-env", "STANDIN_KEY", env={"STANDIN_KEY": secret})
    db = tmp_path / "k.duckdb"
    denied = _run(proc.address, small, db, "--run-id", "nokey", env={"ANESBENCH_API_KEY": "", "OPENAI_API_KEY": ""})
    # A refused key is a configuration fault found by the preflight: exit 2, nothing written.
    assert denied.returncode == 2 and "HTTP 401" in denied.stderr and not db.exists()
    key_file = tmp_path / "key.txt"
    key_file.write_text(secret + "\n", encoding="utf-8")
    via_file = _run(proc.address, small, db, "--run-id", "file", "--api-key-file", str(key_file))
    assert via_file.returncode == 0, via_file.stderr
    via_env = _run(proc.address, small, db, "--run-id", "env", env={"ANESBENCH_API_KEY": secret})
    assert via_env.returncode == 0, via_env.stderr
    assert secret not in via_env.stderr + via_env.stdout + via_file.stderr + denied.stderr
    assert secret.encode() not in db.read_bytes()


def test_credentials_in_the_endpoint_are_not_stored(standin: Proc, small: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    endpoint = standin.address.replace("http://", "http://user:hunter2@")
    assert _run(endpoint, small, db).returncode == 0
    assert _rows(db, "SELECT endpoint FROM runs") == [(standin.address,)]


def test_progress_bar_on_request(standin: Proc, small: Path, tmp_path: Path) -> None:
    result = _run(standin.address, small, tmp_path / "p.duckdb", "--progress")
    assert result.returncode == 0
    assert "12/12" in result.stderr and "acc=" in result.stderr
    quiet = _run(standin.address, small, tmp_path / "q.duckdb", "--no-progress")
    assert quiet.stderr == "" and quiet.stdout.count("\n") == 1


def _settled(address: str) -> dict[str, Any]:
    """The stand-in's stats once every request it took has been answered (its handlers are not
    cancelled when the client goes away, so the requests a killed client left in flight still count
    as answered: work done that the client never saw)."""
    def answered_all() -> dict[str, Any] | None:
        stats = standin_stats(address)
        return stats if stats["answered"] == stats["requests"] else None

    return wait_until(answered_all, "the stand-in answers the requests left in flight")


def test_kill_9_then_resume_sends_only_unfinished_work(make_standin, tmp_path: Path) -> None:
    concurrency, latency_ms, jitter_ms = 8, 150, 30
    proc = make_standin("--answer-key", str(SAMPLE), "--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms))
    db = tmp_path / "kill.duckdb"
    args = [*CLI, "run", "--endpoint", proc.address, "--model", "standin", "--dataset", str(SAMPLE),
            "--languages", "en,zh", "--db", str(db), "--run-id", "k", "--concurrency", str(concurrency),
            "--elicit", "off"]  # every request a reply: the counts below are exact
    total = 2 * ITEMS
    victim = popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: standin_stats(proc.address)["answered"] >= total // 2, "half the run answered")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    first = _settled(proc.address)
    assert first["answered"] < total
    saved = _rows(db, "SELECT count(*) FROM results")[0][0]
    lost = first["answered"] - saved  # answered by the model, not in the store
    # What a kill -9 may cost, from this run's settings:
    # * the requests in flight: at most `concurrency`, one per worker;
    # * the answers received but not durable yet. The writer takes its pending rows every
    #   FLUSH_INTERVAL and writes them; a row added just after a take waits for that write, one interval
    #   and the next write: at most interval + 2 writes (allow 0.1 s per write on a loaded machine).
    #   Each worker has one request out at a time and the stand-in holds each for at least
    #   latency - jitter, so a worker receives at most floor(window / that) + 1 answers in the window.
    window = FLUSH_INTERVAL + 2 * 0.1
    per_worker = math.floor(window / ((latency_ms - jitter_ms) / 1000)) + 1
    bound = concurrency + concurrency * per_worker  # of 132: 8 + 8 * 4 = 40 at a 0.2 s interval, 32 at 0.1 s
    print(f"kill -9: {lost} answers lost of {total} (in flight + unflushed; bound {bound})")
    assert 0 <= lost <= bound, (lost, bound, first, saved)

    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(db, "SELECT count(*), count(DISTINCT (item_id, language, sample)) FROM results") == [(total, total)]
    stats = standin_stats(proc.address)
    # The resumed run sends exactly what is not in the store: each lost answer once more, nothing else.
    assert stats["answered"] == first["answered"] + (total - saved)
    assert stats["answered_more_than_once"] == lost
    assert stats["answered"] - stats["answered_more_than_once"] == total
    clean_db = tmp_path / "clean.duckdb"
    clean = _run(proc.address, SAMPLE, clean_db, "--languages", "en,zh", "--concurrency", "32", "--elicit", "off")
    assert clean.returncode == 0
    assert _leaderboard(db) == _leaderboard(clean_db)


def test_replicas_of_one_model_are_used_together_and_a_dead_one_is_taken_out(make_standin, tmp_path: Path,
                                                                           write_jsonl) -> None:
    import socket

    first = make_standin("--slots", "4", "--latency-ms", "30")
    second = make_standin("--slots", "4", "--latency-ms", "30")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"  # nothing listens once the socket is closed
    data = write_jsonl(make_records(80), "eighty.jsonl")
    db = tmp_path / "multi.duckdb"
    result = run_cli("run", "--endpoint", first.address, "--endpoint", second.address, "--model", "standin",
                     "--dataset", str(data), "--db", str(db), "--elicit", "off")
    assert result.returncode == 0, result.stderr
    one, two = standin_stats(first.address), standin_stats(second.address)
    assert one["answered"] + two["answered"] == 80
    assert min(one["answered"], two["answered"]) >= 20  # both replicas did real work
    # Each replica kept full: its 4 slots busy plus a short queue (sized from /get_server_info).
    assert one["max_running"] == two["max_running"] == 4
    assert one["max_inflight"] == two["max_inflight"] == 4 + 8
    with_dead = run_cli("run", "--endpoint", dead, "--endpoint", first.address, "--model", "standin",
                        "--dataset", str(data), "--db", str(tmp_path / "dead.duckdb"), "--concurrency", "8",
                        "--elicit", "off")
    assert with_dead.returncode == 0, with_dead.stderr
    assert _rows(tmp_path / "dead.duckdb", "SELECT count(*) FROM results WHERE error IS NULL") == [(80,)]
    # The dead replica costs a few retries, not one per item: it is taken out after repeated failures.
    retried = _rows(tmp_path / "dead.duckdb", "SELECT count(*) FROM results WHERE attempts > 1")[0][0]
    assert retried <= 20


def test_reuse_answers_identical_requests_from_the_store(standin: Proc, small: Path, tmp_path: Path) -> None:
    db = tmp_path / "reuse.duckdb"
    # --elicit off: a follow-up is not reused (it is asked again), and this test counts the replies alone
    assert _run(standin.address, small, db, "--run-id", "first", "--elicit", "off").returncode == 0
    sent = standin_stats(standin.address)["requests"]
    again = _run(standin.address, small, db, "--run-id", "second", "--reuse", "--elicit", "off")
    assert again.returncode == 0, again.stderr
    assert standin_stats(standin.address)["requests"] == sent  # no inference at all
    assert _rows(db, "SELECT count(*), count(DISTINCT reused_from) FROM results WHERE run_id = 'second' "
                     "AND reused_from = 'first'") == [(12, 1)]
    assert _rows(db, "SELECT count(*) FROM results a JOIN results b USING (item_id, language, sample) "
                     "WHERE a.run_id = 'first' AND b.run_id = 'second' AND a.pred IS NOT DISTINCT FROM b.pred "
                     "AND a.response = b.response") == [(12,)]
    # Another generation parameter is another request: nothing to reuse.
    third = _run(standin.address, small, db, "--run-id", "third", "--reuse", "--max-tokens", "1000", "--elicit", "off")
    assert third.returncode == 0
    assert standin_stats(standin.address)["requests"] == sent + 12


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_finished_results_and_the_run_resumes(make_standin, tmp_path: Path, sig: int) -> None:
    concurrency = 4
    proc = make_standin("--answer-key", str(SAMPLE), "--latency-ms", "50")
    db = tmp_path / "int.duckdb"
    args = [*CLI, "run", "--endpoint", proc.address, "--model", "standin", "--dataset", str(SAMPLE),
            "--db", str(db), "--run-id", "i", "--concurrency", str(concurrency)]
    victim = popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: standin_stats(proc.address)["answered"] >= 12, "12 answers before the signal")
    victim.send_signal(sig)
    _, err = victim.communicate(timeout=30)
    assert victim.returncode == 128 + sig  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them
    assert "Traceback" not in err
    assert "run again with the same --run-id to resume" in err
    first = _settled(proc.address)
    status, saved = _rows(db, "SELECT status, (SELECT count(*) FROM results) FROM runs")[0]
    assert status == "cancelled" and saved >= 12 - concurrency
    # Everything received before the signal was written: only the requests in flight are lost.
    lost = first["answered"] - saved
    assert 0 <= lost <= concurrency, (lost, first, saved)
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert standin_stats(proc.address)["answered_more_than_once"] == lost  # only what was in flight


def test_a_limit_run_after_a_full_run_leaves_the_full_run_on_the_board(standin: Proc, small: Path,
                                                                       tmp_path: Path) -> None:
    db = tmp_path / "series.duckdb"
    assert _run(standin.address, small, db, "--run-id", "full").returncode == 0
    assert _run(standin.address, small, db, "--run-id", "tiny", "--limit", "3").returncode == 0
    board = json.loads(run_cli("leaderboard", "--db", str(db), "--format", "json").stdout)
    overall = [row for row in board if row["level"] == "overall"]
    assert [(row["run_id"], row["total"], row["item_limit"]) for row in overall] == [("full", 12, None)]
    shown = run_cli("leaderboard", "--db", str(db), "--run", "tiny")
    assert shown.returncode == 0 and "first 3 items only" in shown.stdout
    assert _rows(db, "SELECT id, total, item_limit FROM runs ORDER BY id") == [("full", 12, None), ("tiny", 3, 3)]
