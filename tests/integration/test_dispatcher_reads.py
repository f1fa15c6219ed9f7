"""leaderboard, compare, export and report through a dispatcher (it owns the DuckDB file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from anesbench.store.export import EXPORT_NAMES
from tests.conftest import SAMPLE, SAMPLE_ITEMS
from tests.procs import Proc, run_cli, start_dispatcher, start_grader, start_standin

ITEMS = SAMPLE_ITEMS


@dataclass
class Stack:
    address: str
    procs: list[Proc]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("dispatcher")
    clean = start_standin("--answer-key", str(SAMPLE), "--served-model", "model-one,model-two")
    # Every third attempt refused with a 429 (a 503 burst would trip the circuit breaker and end the run early).
    faulty = start_standin("--answer-key", str(SAMPLE), "--fail-every", "3", "--fail-kind", "429",
                           "--served-model", "model-one")
    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, folder / "d.duckdb")
    stack = Stack(dispatcher.address, [dispatcher, grader, clean, faulty])
    try:
        for run_id, model, endpoint, code in (("d1", "model-one", clean, 0), ("d2", "model-two", clean, 0),
                                              ("partial", "model-one", faulty, 1)):
            result = run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", endpoint.address, "--model",
                             model, "--dataset", str(SAMPLE), "--languages", "en,zh", "--run-id", run_id,
                             "--max-attempts", "1", "--no-progress", timeout=180)
            assert result.returncode == code, result.stderr
        yield stack
    finally:
        for proc in stack.procs:
            proc.stop()


def _json(*args: str) -> object:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_remote_board_counts_errors_apart_and_hides_incomplete_runs(stack: Stack) -> None:
    rows = _json("leaderboard", "--dispatcher", stack.address, "--format", "json")
    assert {row["run_id"] for row in rows} == {"d1", "d2"}
    partial = _json("leaderboard", "--dispatcher", stack.address, "--run", "partial", "--format", "json")
    overall = [row for row in partial if row["level"] == "overall"]
    assert all(row["errors"] + row["total"] == ITEMS and row["status"] == "failed" for row in overall)
    assert sum(row["errors"] for row in overall) == 2 * ITEMS // 3  # every third attempt failed, one attempt each
    assert all(row["ci_low"] <= row["accuracy"] <= row["ci_high"] for row in partial if row["total"])
    flagged = run_cli("leaderboard", "--dispatcher", stack.address, "--include-incomplete").stdout
    assert "* model-one" in flagged and "partial" in flagged


def test_remote_compare_matches_the_pairing_rules(stack: Stack) -> None:
    data = _json("compare", "d1", "d2", "--dispatcher", stack.address, "--format", "json")
    overall = next(c for c in data["cells"] if (c["language"], c["level"]) == ("all", "overall"))
    assert overall["pairs"] == 2 * ITEMS
    dropped = _json("compare", "d1", "partial", "--dispatcher", stack.address, "--format", "json")
    assert dropped["dropped_pairs"] > 0
    pairs = next(c for c in dropped["cells"] if (c["language"], c["level"]) == ("all", "overall"))["pairs"]
    assert pairs + dropped["dropped_pairs"] == 2 * ITEMS
    assert run_cli("compare", "d1", "gone", "--dispatcher", stack.address).returncode == 2


def test_remote_export_streams_every_result(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "partial.parquet"
    result = run_cli("export", "--dispatcher", stack.address, "--run", "partial", "--format", "parquet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 2 * ITEMS and tuple(rows[0]) == EXPORT_NAMES
    errors = [row for row in rows if row["outcome"] == "error"]
    assert errors and all(row["error"] and row["response"] is None and row["predicted"] is None for row in errors)
    lines = run_cli("export", "--dispatcher", stack.address, "--run", "d1").stdout.splitlines()
    assert len(lines) == 2 * ITEMS and json.loads(lines[0])["response"]
    missing = tmp_path / "none.jsonl"
    assert run_cli("export", "--dispatcher", stack.address, "--run", "gone", "--out", str(missing)).returncode == 2
    assert not missing.exists()


def test_remote_report(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run_cli("report", "--dispatcher", stack.address, "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "A = d1 vs B = d2" in html and html.count("<svg") == 3
