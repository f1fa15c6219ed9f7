"""An outage is not a bad model: an endpoint down for every request, and for a third of them.

Real processes: stand-in servers (one clean, one that fails every third attempt with 503) and the
CLI. The same model name and seed give the same replies on both, so the answered items of the faulty
run can be checked against the clean run item by item.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLE, SAMPLE_ITEMS
from tests.procs import Proc, run_cli, standin_stats, start_standin

ITEMS = SAMPLE_ITEMS


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(endpoint: str, db: Path, run_id: str, *extra: str):
    # --elicit off: a follow-up lost to the outage would leave the rules' verdict where the clean run has
    # the model's letter; the subject here is the replies themselves
    return run_cli("run", "--endpoint", endpoint, "--model", "standin", "--dataset", str(SAMPLE), "--db", str(db),
                   "--run-id", run_id, "--no-progress", "--concurrency", "8", "--elicit", "off", *extra,
                   timeout=180)


def _board(db: Path, *extra: str) -> list[dict]:
    result = run_cli("leaderboard", "--db", str(db), "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _overall(rows: list[dict], run_id: str) -> dict:
    (row,) = [r for r in rows if r["run_id"] == run_id and r["level"] == "overall"]
    return row


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Proc, Proc, Proc]]:
    clean = start_standin("--answer-key", str(SAMPLE), "--seed", "3")
    faulty = start_standin("--answer-key", str(SAMPLE), "--seed", "3", "--fail-every", "3", "--fail-kind", "503")
    # Up for the preflight, then failing every request (429s: an outage of 503s would trip the circuit breaker).
    refusing = start_standin("--fail-first", "100", "--fail-kind", "429")
    yield clean, faulty, refusing
    clean.stop()
    faulty.stop()
    refusing.stop()


@pytest.fixture(scope="module")
def db(servers: tuple[Proc, Proc, Proc], tmp_path_factory: pytest.TempPathFactory) -> Path:
    clean, faulty, refusing = servers
    path = tmp_path_factory.mktemp("outage") / "a.duckdb"
    assert _run(clean.address, path, "clean").returncode == 0
    partial = _run(faulty.address, path, "partial", "--max-attempts", "1")
    assert partial.returncode == 1, partial.stderr
    down = _run(refusing.address, path, "down", "--max-attempts", "1")
    assert down.returncode == 1, down.stderr
    # Nothing listening at all: the preflight refuses before a run exists.
    never = _run(f"http://127.0.0.1:{_closed_port()}/v1", path, "never", "--max-attempts", "1")
    assert never.returncode == 1 and "not ready" in never.stderr, never.stderr
    return path


def test_down_for_every_request_counts_errors_not_answers(db: Path) -> None:
    row = _overall(_board(db, "--run", "down"), "down")
    assert (row["errors"], row["total"], row["correct"], row["unanswered"], row["status"]) == (ITEMS, 0, 0, 0, "failed")
    table = run_cli("leaderboard", "--db", str(db), "--run", "down").stdout
    assert "0.00" not in table  # no accuracy is shown for a model that never answered


def test_down_for_a_third_keeps_the_accuracy_of_the_answered_ones(db: Path, servers: tuple[Proc, Proc, Proc]) -> None:
    row = _overall(_board(db, "--run", "partial"), "partial")
    with duckdb.connect(str(db), read_only=True) as con:
        errors = con.execute("SELECT count(*) FROM results WHERE run_id = 'partial' AND error IS NOT NULL").fetchone()[0]
        # the clean run's verdicts on exactly the items the faulty run answered
        same = con.execute("""SELECT count(*) FILTER (WHERE c.correct), count(*), count(*) FILTER (WHERE c.correct <> p.correct)
                              FROM results p JOIN results c USING (item_id, language, sample)
                              WHERE p.run_id = 'partial' AND c.run_id = 'clean' AND p.error IS NULL""").fetchone()
    assert errors == ITEMS // 3  # every third attempt failed, one attempt each
    assert standin_stats(servers[1].address)["outcomes"] == {"503": errors, "ok": ITEMS - errors}
    assert (row["errors"], row["total"]) == (errors, ITEMS - errors)
    clean_correct_on_answered, answered, disagreements = same
    assert disagreements == 0
    assert answered == row["total"]
    assert row["correct"] == clean_correct_on_answered
    assert row["accuracy"] == pytest.approx(clean_correct_on_answered / answered)
    assert row["status"] == "failed"


def test_neither_outage_run_is_on_the_default_board(db: Path) -> None:
    assert {row["run_id"] for row in _board(db)} == {"clean"}


def test_include_incomplete_shows_the_newest_outage_flagged(db: Path) -> None:
    assert {row["run_id"] for row in _board(db, "--include-incomplete")} == {"clean", "down"}
    table = run_cli("leaderboard", "--db", str(db), "--include-incomplete").stdout
    assert any(line.startswith("* standin") and "down" in line for line in table.splitlines())
