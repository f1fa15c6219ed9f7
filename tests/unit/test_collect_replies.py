"""scripts/collect_replies.py: run exports become corpus lines, labels survive a re-run, the grader's fields never."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from anesbench_testkit.corpus import load
from tests.conftest import ROOT, SAMPLE

FIRST, SECOND = "c4ac2c8c-b747-513f-8b05-fecd9921320a", "eeaba6e1-ca8b-5b61-b484-d455a0769964"
REAL = ROOT / "tests" / "data" / "real"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("collect_replies", ROOT / "scripts" / "collect_replies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(item: str, language: str, response: str | None, **extra: Any) -> dict[str, Any]:
    """One line of `anesbench export --format jsonl`, every column present."""
    row = {"item_id": item, "language": language, "level": "system1", "sample": 0, "gold": "C", "predicted": "C",
           "method": "answer_phrase", "outcome": "correct", "correct": True, "response": response,
           "reasoning": None, "finish_reason": "stop", "prompt_tokens": 120, "completion_tokens": 42,
           "latency_s": 1.5, "attempts": 1, "error": None}
    row.update(extra)
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _collect(tmp_path: Path, exports: dict[str, list[dict[str, Any]]], out: Path) -> int:
    args = ["--dataset", str(SAMPLE), "--model", "tiny", "--out", str(out)]
    for template, rows in exports.items():
        args += ["--export", f"{template}={_write(tmp_path / f'{template}.jsonl', rows)}"]
    code: int = _script().main(args)
    return code


def test_an_export_becomes_unlabelled_corpus_lines(tmp_path: Path) -> None:
    out = tmp_path / "tiny.jsonl"
    exports = {
        "anesbench-cot": [_row(FIRST, "en", "The answer is C."),
                          _row(SECOND, "en", None, error="HTTP 500", finish_reason=None, completion_tokens=None)],
        "anesbench-paper": [_row(FIRST, "zh", "答案：C", finish_reason="length", completion_tokens=1024,
                                 reasoning="先看选项")],
    }
    assert _collect(tmp_path, exports, out) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"id": "tiny-001", "lang": "en", "tags": ["real-cot-en", "unlabelled"],
         "choices": {"A": "0.25 mg/kg", "B": "1 mg/kg", "C": "2.5 mg/kg", "D": "10 mg/kg"},
         "response": "The answer is C.", "finish_reason": "stop", "expected": None,
         "source": {"model": "tiny", "template": "anesbench-cot", "language": "en", "item": FIRST,
                    "completion_tokens": 42}},
        {"id": "tiny-002", "lang": "zh", "tags": ["real-paper-zh", "unlabelled"],
         "choices": {"A": "0.25 mg/kg", "B": "1 mg/kg", "C": "2.5 mg/kg", "D": "10 mg/kg"},
         "response": "<think>先看选项</think>答案：C", "finish_reason": "length", "expected": None,
         "source": {"model": "tiny", "template": "anesbench-paper", "language": "zh", "item": FIRST,
                    "completion_tokens": 1024}},
    ]


def test_labels_are_kept_for_unchanged_replies_only(tmp_path: Path) -> None:
    out = tmp_path / "tiny.jsonl"
    assert _collect(tmp_path, {"anesbench-cot": [_row(FIRST, "en", "B."), _row(SECOND, "en", "A.")]}, out) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    lines[0].update(expected="B", tags=["real-cot-en", "letter_only"])
    lines[1].update(expected="A", tags=["real-cot-en", "letter_only"])
    _write(out, lines)
    assert _collect(tmp_path, {"anesbench-cot": [_row(FIRST, "en", "B."), _row(SECOND, "en", "C, then A.")]}, out) == 0
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(line["expected"], line["tags"]) for line in again] == [
        ("B", ["real-cot-en", "letter_only"]), (None, ["real-cot-en", "unlabelled"])]


def test_a_row_without_an_export_column_is_named_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny.jsonl"
    row = _row(FIRST, "en", "C")
    del row["finish_reason"]
    assert _collect(tmp_path, {"anesbench-cot": [_row(SECOND, "en", "A"), row]}, out) == 2
    assert "anesbench-cot.jsonl:2: field 'finish_reason' missing" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "gemma3-270m"])
def test_the_committed_real_corpora_are_fully_labelled(name: str) -> None:
    cases = load(REAL / f"{name}.jsonl")
    assert cases, f"{name}.jsonl is empty"
    assert [c["id"] for c in cases if "unlabelled" in c["tags"]] == []
    assert {c["source"]["model"] for c in cases} == {name}
