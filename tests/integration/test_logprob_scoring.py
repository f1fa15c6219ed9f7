"""`anesbench run --scoring logprobs` against stand-ins playing each server's logprobs shape, embedded and over gRPC."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLE, check_letter_distributions
from tests.procs import Proc, run_cli, standin_control, standin_intended, start_dispatcher, start_grader, start_standin

LIMIT = "12"


@pytest.fixture
def make_standin() -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def make(**plan: object) -> Proc:
        started.append(start_standin("--answer-key", str(SAMPLE)))
        if plan:
            standin_control(started[-1].address, **plan)
        return started[-1]

    yield make
    for proc in started:
        proc.stop()


def _run(endpoint: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--endpoint", endpoint, "--model", "standin", "--dataset", str(SAMPLE), "--limit", LIMIT,
                   "--languages", "en,zh", "--no-progress", "--scoring", "logprobs", *extra, timeout=180)


def _export(run_id: str, *source: str) -> list[dict]:
    exported = run_cli("export", "--run", run_id, *source)
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


@pytest.mark.parametrize("shape", ["openai", "llamacpp"])
def test_each_logprobs_shape_gives_every_result_its_letter_distribution(
    make_standin: Callable[..., Proc], tmp_path: Path, shape: str
) -> None:
    standin = make_standin(logprobs=shape)
    db = tmp_path / "lp.duckdb"
    result = _run(standin.address, "--db", str(db), "--run-id", "lp")
    assert result.returncode == 0, result.stderr
    rows = _export("lp", "--db", str(db))
    check_letter_distributions(rows, 2 * int(LIMIT))
    intended = standin_intended(standin.address)  # the letter the stand-in gave most mass to, per request
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT request_hash, pred FROM results WHERE run_id = 'lp'").fetchall()
    assert all(intended[digest] == [pred] for digest, pred in stored)
    assert all(row["letter_probs_complete"] for row in rows)
    board = json.loads(run_cli("leaderboard", "--db", str(db), "--run", "lp", "--format", "json").stdout)
    assert {row["scoring"] for row in board} == {"logprobs"}


def test_a_short_top_list_bounds_the_missing_letters_and_grades_only_a_certain_top(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin(top_logprobs=2)  # the answer's " X" and one other letter: the rest are bounded
    db = tmp_path / "short.duckdb"
    assert _run(standin.address, "--db", str(db), "--run-id", "two").returncode == 0
    rows = _export("two", "--db", str(db))
    check_letter_distributions(rows, 2 * int(LIMIT))
    assert not any(row["letter_probs_complete"] for row in rows)
    standin_control(standin.address, top_logprobs=1)  # the answer alone: its bound ties every other letter
    assert _run(standin.address, "--db", str(db), "--run-id", "one").returncode == 0
    for row in _export("one", "--db", str(db)):
        assert row["predicted"] is None and row["outcome"] == "unanswered" and not row["letter_probs_complete"]
        assert len(set(json.loads(row["letter_probs"]).values())) == 1


@pytest.mark.parametrize(("plan", "says"), [
    ({"logprobs": "absent"}, "cannot return log-probabilities"),
    ({"logprobs": "refuse"}, "refuses a log-probability request (HTTP 400"),
    ({"logprobs": "chat-only"}, "chat-only"),
])
def test_a_server_that_cannot_score_is_refused_before_anything_is_written(
    make_standin: Callable[..., Proc], tmp_path: Path, plan: dict, says: str
) -> None:
    standin = make_standin(**plan)
    db = tmp_path / "none.duckdb"
    result = _run(standin.address, "--db", str(db))
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and f"{standin.address}/completions" in result.stderr
    assert "Traceback" not in result.stderr and not db.exists()


def test_elicitation_asked_of_a_logprob_run_is_bad_input(make_standin: Callable[..., Proc], tmp_path: Path) -> None:
    result = _run(make_standin().address, "--db", str(tmp_path / "e.duckdb"), "--elicit", "all")
    assert result.returncode == 2 and "elicit" in result.stderr and "logprob" in result.stderr
    assert not (tmp_path / "e.duckdb").exists()


def test_a_logprob_run_over_grpc_and_its_comparison_with_a_generative_run(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin(logprobs="llamacpp")
    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, tmp_path / "d.duckdb")
    try:
        remote = ("--dispatcher", dispatcher.address)
        assert _run(standin.address, *remote, "--run-id", "remote-lp").returncode == 0
        check_letter_distributions(_export("remote-lp", *remote), 2 * int(LIMIT))
        (run,) = [r for r in json.loads(run_cli("runs", *remote, "--format", "json").stdout) if r["id"] == "remote-lp"]
        assert (run["scoring"], run["prompt_template"], run["elicit"]) == ("logprobs", "anesbench-logprob", "off")
        generated = run_cli("run", "--endpoint", standin.address, "--model", "standin", "--dataset", str(SAMPLE),
                            "--limit", LIMIT, "--languages", "en,zh", "--no-progress", *remote, "--run-id", "remote-gen",
                            timeout=180)
        assert generated.returncode == 0, generated.stderr
        board = json.loads(run_cli("leaderboard", *remote, "--format", "json").stdout)
        assert {(row["run_id"], row["scoring"]) for row in board} == {("remote-lp", "logprobs"),
                                                                      ("remote-gen", "generate")}
        paper = run_cli("leaderboard", *remote, "--layout", "paper").stdout
        assert "standin [scoring=logprobs, first 12 items only]" in paper and "standin [first 12 items only]" in paper
        compared = run_cli("compare", "remote-lp", "remote-gen", *remote, "--format", "json")
        assert compared.returncode == 0, compared.stderr
        overall = [cell for cell in json.loads(compared.stdout)["cells"]
                   if (cell["language"], cell["level"]) == ("all", "overall")]
        assert overall[0]["pairs"] == 2 * int(LIMIT) and 0 <= overall[0]["p_value"] <= 1
        standin_control(standin.address, logprobs="absent")  # the dispatcher's preflight refuses it too
        refused = _run(standin.address, *remote, "--run-id", "remote-refused")
        assert refused.returncode == 2 and "cannot return log-probabilities" in refused.stderr, refused.stderr
        assert "remote-refused" not in run_cli("runs", *remote, "--format", "json").stdout
    finally:
        dispatcher.stop()
        grader.stop()
