"""Bad input: exit 2, one clear message naming where and what, no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_record, make_records
from tests.procs import run_cli, start_standin


def _assert_bad_input(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_invalid_dataset_writes_nothing(write_jsonl, tmp_path: Path) -> None:
    bad = make_record(2, answer="A")
    bad["answer"] = "F"
    path = write_jsonl([make_record(1), bad])
    db = tmp_path / "never.duckdb"
    result = run_cli("run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--dataset", str(path),
                     "--db", str(db))
    _assert_bad_input(result, f"{path}:2 (id q-0002): field 'answer': 'F' is not one of the options A-D")
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--languages", "en,fr"], "unknown language(s) fr"),
        (["--endpoint", "ftp://x"], "--endpoint: expected an http(s) base URL"),
        (["--concurrency", "0"], "--concurrency"),
        (["--temperature", "3"], "--temperature"),
        (["--run-id", "bad id!"], "--run-id"),
        (["--prompt-template", "missing-template"], "no bundled template or file named"),
        (["--dataset", "/nonexistent/file.jsonl"], "no such file"),
    ],
)
def test_bad_flags(write_jsonl, tmp_path: Path, args: list[str], needle: str) -> None:
    base = {"--endpoint": "http://127.0.0.1:9/v1", "--model": "m", "--dataset": str(write_jsonl(make_records(2))),
            "--db": str(tmp_path / "x.duckdb")}
    for flag, value in zip(args[::2], args[1::2], strict=False):
        base[flag] = value
    result = run_cli("run", *[part for pair in base.items() for part in pair])
    _assert_bad_input(result, needle)
    assert not (tmp_path / "x.duckdb").exists()


def test_same_run_id_with_another_configuration_is_refused(write_jsonl, tmp_path: Path) -> None:
    proc = start_standin("--served-model", "m")
    try:
        data = write_jsonl(make_records(3))
        db = tmp_path / "c.duckdb"
        common = ["run", "--endpoint", proc.address, "--model", "m", "--dataset", str(data), "--db", str(db),
                  "--run-id", "same"]
        assert run_cli(*common).returncode == 0
        result = run_cli(*common, "--max-tokens", "512")
        _assert_bad_input(result, "--run-id: a run 'same' exists with a different configuration (",
                          "max_tokens: 2048 -> 512", "); use another id")
    finally:
        proc.stop()


def test_reports_on_a_missing_database(tmp_path: Path) -> None:
    _assert_bad_input(run_cli("leaderboard", "--db", str(tmp_path / "none.duckdb")), "no such file")
    _assert_bad_input(run_cli("runs", "--db", str(tmp_path / "none.duckdb")), "no such file")
    _assert_bad_input(run_cli("leaderboard", "--format", "xml"), "Invalid value for '--format'")


def test_grade_command_keeps_order_and_passes_fields_through(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "choices": {"A": "Propofol", "B": "Ketamine"}, "response": "The answer is B."},
        {"id": 2, "choices": {"A": "Propofol", "B": "Ketamine"}, "response": "I cannot answer that."},
    ]
    result = run_cli("grade", stdin="".join(json.dumps(line) + "\n" for line in lines))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["pred"]) for o in out] == [(1, "B"), (2, None)]
    assert all(isinstance(o["method"], str) for o in out)


def test_grade_command_rejects_bad_lines_before_writing() -> None:
    good = json.dumps({"choices": {"A": "x", "B": "y"}, "response": "A"})
    result = run_cli("grade", stdin=good + "\n" + json.dumps({"choices": {"A": "x"}}) + "\n")
    _assert_bad_input(result, "<stdin>:2: field 'response'")
    assert result.stdout == ""
