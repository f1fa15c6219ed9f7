"""Shared fixtures: small AnesBench-format records and files built in the test, never typed-in results."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "anesbench-sample.jsonl"
SAMPLE_ITEMS = sum(1 for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip())
PYTHON = sys.executable
LETTERS = "ABCDEFGH"


def check_letter_distributions(rows: list[dict[str, Any]], count: int) -> None:
    """Exported logprob results of the sample set: ``count`` of them, each with a distribution over exactly its
    item's letters that sums to 1, its prediction the most probable letter."""
    items = {record["id"]: record for record in map(json.loads, SAMPLE.read_text(encoding="utf-8").splitlines())}
    assert len(rows) == count
    for row in rows:
        probs = json.loads(row["letter_probs"])
        assert list(probs) == list(LETTERS[:items[row["item_id"]]["choice_num"]])
        assert abs(sum(probs.values()) - 1) <= 1e-6
        assert row["method"] == "logprob" and row["predicted"] == max(probs, key=probs.__getitem__)
        assert row["correct"] == (row["predicted"] == row["gold"])


def make_record(n: int, *, level: int = 1, choice_num: int = 4, answer: str | None = None,
                zh_prefix: str = "zh") -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"q-{n:04d}",
        "choice_num": choice_num,
        "answer": answer or LETTERS[n % choice_num],
        "level": level,
        "en_question": f"Question {n}: which drug is option number {n % choice_num}?",
    }
    for i, letter in enumerate(LETTERS[:choice_num]):
        record[f"en_{letter}"] = f"Drug {n}-{i}"
    record[f"{zh_prefix}_question"] = f"问题{n}：哪一个药物是第{n % choice_num}号选项？"
    for i, letter in enumerate(LETTERS[:choice_num]):
        record[f"{zh_prefix}_{letter}"] = f"药物{n}-{i}"
    return record


def make_records(count: int) -> list[dict[str, Any]]:
    return [make_record(n, level=1 + n % 3, choice_num=4 + n % 2) for n in range(count)]


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    def write(records: list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        return path

    return write
