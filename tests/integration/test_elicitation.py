"""The follow-up turn end to end: `anesbench run --elicit` in embedded mode against stand-ins playing each engine."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from anesbench.inference.constraints import read_letter
from tests.conftest import SAMPLE
from tests.procs import CLI, Proc, http_json, popen, run_cli, standin_control, standin_stats, start_standin
from tests.waiting import wait_until

LIMIT = "12"


@pytest.fixture
def make_standin() -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def make(*options: str) -> Proc:
        started.append(start_standin("--answer-key", str(SAMPLE), *options))
        return started[-1]

    yield make
    for proc in started:
        proc.stop()


def _run(standin: Proc, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--endpoint", standin.address, "--model", "standin", "--dataset", str(SAMPLE),
                   "--db", str(db), "--limit", LIMIT, "--no-progress", *extra, timeout=180)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _reset_stats(standin: Proc) -> None:
    http_json(standin.address.removesuffix("/v1") + "/_stats/reset", {})


def _board(db: Path, run_id: str) -> list[dict]:
    result = run_cli("leaderboard", "--db", str(db), "--run", run_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("flavour", "constraint"), [
    ("sglang", "ebnf"), ("llamacpp", "grammar"), ("vllm", "guided_choice"),
    ("response_format", "response_format"), ("none", "none"),
])
def test_each_engine_gets_its_constraint_and_every_reply_without_an_answer_gets_a_letter(
    make_standin: Callable[..., Proc], tmp_path: Path, flavour: str, constraint: str
) -> None:
    standin = make_standin("--constraints", flavour, "--unanswerable-rate", "0.5")
    db = tmp_path / "e.duckdb"
    result = _run(standin, db, "--languages", "en,zh", "--run-id", "e")
    assert result.returncode == 0, result.stderr
    assert _rows(db, "SELECT elicit, elicit_constraint, elicit_prompt FROM runs") == [
        ("unanswered", constraint, "anesbench-elicit-1")]
    rows = _rows(db, "SELECT pred, method, pred_rules, method_rules, elicitation, elicitation_response, "
                     "elicitation_params, elicitation_attempts FROM results")
    asked = [row for row in rows if row[4] is not None]
    assert asked and len(asked) == sum(1 for row in rows if row[2] is None)  # exactly the rules' no-answers
    for pred, method, _, method_rules, state, reply, params, attempts in asked:
        # the terse stand-in answers a bare letter when unconstrained: every path ends in a letter
        assert (state, method, attempts) == ("done", "elicited", 1)
        assert pred == read_letter(reply, "ABCDE", constraint) and method_rules.startswith("none_")
        assert json.loads(params)["constraint"] == constraint
    assert standin_stats(standin.address)["follow_ups"] == len(asked) + (constraint == "response_format")  # + probe
    board = {(r["language"], r["level"]): r for r in _board(db, "e")}
    elicited = sum(board[(language, "overall")]["elicited"] for language in ("en", "zh"))
    assert elicited == len(asked) and all(board[(lang, "overall")]["unanswered"] == 0 for lang in ("en", "zh"))


def test_a_server_that_ignores_the_constraint_and_chats_leaves_no_answer(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin("--constraints", "none", "--unconstrained-reply", "chatty", "--unanswerable-rate", "0.5")
    db = tmp_path / "c.duckdb"
    assert _run(standin, db, "--run-id", "c").returncode == 0
    asked = _rows(db, "SELECT pred, method, method_rules, elicitation_response FROM results WHERE elicitation = 'done'")
    assert asked
    for pred, method, method_rules, reply in asked:
        assert len(reply) > 1 and (pred, method) == (None, method_rules)  # a sentence naming a letter is not one
    (overall,) = [r for r in _board(db, "c") if r["level"] == "overall"]
    assert (overall["elicited"], overall["unanswered"]) == (0, len(asked))


def test_off_is_the_rules_alone_and_sends_nothing_more(make_standin: Callable[..., Proc], tmp_path: Path) -> None:
    standin = make_standin("--unanswerable-rate", "0.4")
    db = tmp_path / "o.duckdb"
    assert _run(standin, db, "--elicit", "off", "--run-id", "off").returncode == 0
    stats = standin_stats(standin.address)
    assert (stats["requests"], stats["follow_ups"]) == (int(LIMIT), 0)
    assert _run(standin, db, "--run-id", "on").returncode == 0
    off = {(r["language"], r["level"]): r for r in _board(db, "off")}
    on = {(r["language"], r["level"]): r for r in _board(db, "on")}
    assert off.keys() == on.keys()
    for key, row in off.items():
        assert (row["elicited"], row["accuracy_strict"], row["elicit"]) == (0, row["accuracy"], "off")
        # the same replies: what the rules alone read in the default run is exactly the off run's board
        assert on[key]["accuracy_strict"] == row["accuracy"] and on[key]["total"] == row["total"]
        assert on[key]["accuracy"] >= row["accuracy"] and on[key]["elicited"] == row["unanswered"]
    paired = _rows(db, "SELECT a.pred, b.pred_rules, a.method, b.method_rules FROM results a JOIN results b "
                       "USING (item_id, language, sample) WHERE a.run_id = 'off' AND b.run_id = 'on'")
    assert len(paired) == int(LIMIT) and all(a == b and m == n for a, b, m, n in paired)
    assert _rows(db, "SELECT count(*) FROM results WHERE run_id = 'off' AND elicitation IS NOT NULL") == [(0,)]


def test_a_failed_follow_up_keeps_the_reply_and_a_resume_sends_the_follow_up_only(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin("--unanswerable-rate", "0.5", "--follow-up-fault", "503")
    db = tmp_path / "f.duckdb"
    result = _run(standin, db, "--run-id", "f", "--max-attempts", "2")
    assert result.returncode == 0, result.stderr  # a usable reply is not an error row
    failed = _rows(db, "SELECT pred, error, elicitation_error, elicitation_attempts FROM results "
                       "WHERE elicitation = 'failed'")
    assert failed and all(p is None and e is None and "503" in why and n == 2 for p, e, why, n in failed)
    (overall,) = [r for r in _board(db, "f") if r["level"] == "overall"]
    assert (overall["errors"], overall["elicited"], overall["unanswered"]) == (0, 0, len(failed))
    standin_control(standin.address, follow_up_fault=None)
    _reset_stats(standin)
    assert _run(standin, db, "--run-id", "f", "--max-attempts", "2").returncode == 0
    stats = standin_stats(standin.address)
    assert stats["requests"] == stats["follow_ups"] == len(failed)  # no reply asked for again
    assert _rows(db, "SELECT count(*) FROM results WHERE elicitation = 'done' AND method = 'elicited'") == [
        (len(failed),)]


def test_a_run_stopped_while_its_follow_ups_hang_resumes_with_the_follow_ups_only(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin("--unanswerable-rate", "1.0", "--follow-up-fault", "hang", "--hang-seconds", "120")
    db = tmp_path / "p.duckdb"
    proc = popen([*CLI, "run", "--endpoint", standin.address, "--model", "standin", "--dataset", str(SAMPLE),
                  "--db", str(db), "--limit", "4", "--run-id", "p", "--no-progress"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: standin_stats(standin.address)["outcomes"].get("hang", 0) == 4, timeout=60,
                   what="the four follow-ups in flight")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pending = _rows(db, "SELECT response IS NOT NULL, pred, error FROM results WHERE elicitation = 'pending'")
    assert pending == [(True, None, None)] * 4  # the replies are kept, their follow-ups still to do
    standin_control(standin.address, follow_up_fault=None)
    _reset_stats(standin)
    result = _run(standin, db, "--run-id", "p", "--limit", "4")
    assert result.returncode == 0, result.stderr
    stats = standin_stats(standin.address)
    assert stats["requests"] == stats["follow_ups"] == 4
    assert _rows(db, "SELECT count(*) FROM results WHERE elicitation = 'done' AND method = 'elicited'") == [(4,)]


def test_resuming_with_another_elicit_mode_is_refused(make_standin: Callable[..., Proc], tmp_path: Path) -> None:
    standin = make_standin()
    db = tmp_path / "m.duckdb"
    assert _run(standin, db, "--run-id", "m", "--elicit", "off").returncode == 0
    result = _run(standin, db, "--run-id", "m", "--elicit", "all")
    assert result.returncode == 2 and "elicit" in result.stderr


def test_elicit_all_measures_how_often_the_rules_agree_with_the_model(
    make_standin: Callable[..., Proc], tmp_path: Path
) -> None:
    standin = make_standin("--unanswerable-rate", "0.2", "--change-mind-rate", "0.3")
    db = tmp_path / "a.duckdb"
    assert _run(standin, db, "--run-id", "all", "--elicit", "all", "--languages", "en,zh").returncode == 0
    rows = _rows(db, "SELECT item_id, pred, pred_rules, method, elicitation FROM results")
    assert all(state == "done" and method == "elicited" for _, _, _, method, state in rows)
    differ = sorted(item for item, pred, rules, _, _ in rows if rules is not None and rules != pred)
    assert differ  # the stand-in changed its mind on some: the rules' letter stays in pred_rules
    result = run_cli("compare", "all", "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    (measured,) = json.loads(result.stdout)["rules_vs_elicited"]
    assert sorted(d["item_id"] for d in measured["disagreements"]) == differ
    overall = {c["language"]: c for c in measured["cells"] if c["level"] == "overall"}
    both = sum(1 for _, _, rules, _, _ in rows if rules is not None)
    assert overall["all"]["both"] == both and overall["all"]["same"] == both - len(differ)
    report = tmp_path / "r.html"
    assert run_cli("report", "--db", str(db), "--run", "all", "--out", str(report)).returncode == 0
    html = report.read_text(encoding="utf-8")
    assert "Rules vs the model&#x27;s elicited letter" in html and all(item in html for item in differ)


def test_several_samples_are_elicited_one_by_one(make_standin: Callable[..., Proc], tmp_path: Path) -> None:
    standin = make_standin("--unanswerable-rate", "0.5", "--refuse-n")
    db = tmp_path / "s.duckdb"
    assert _run(standin, db, "--run-id", "s", "--samples", "3", "--temperature", "0.7").returncode == 0
    per_sample = _rows(db, "SELECT sample, count(*) FILTER (WHERE pred_rules IS NULL), "
                           "count(*) FILTER (WHERE elicitation = 'done') FROM results GROUP BY sample ORDER BY sample")
    assert [s for s, _, _ in per_sample] == [0, 1, 2] and all(none == done for _, none, done in per_sample)
    assert standin_stats(standin.address)["follow_ups"] == sum(none for _, none, _ in per_sample)
