"""The answer grader over the hand-labelled reply corpus (tests/data/grader_corpus.jsonl).

The labels say what a careful human reading each reply would say it committed to (null: no single
answer). The grader must agree on >= 97 % of replies and must never return a letter where the
label is null: it does not guess.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from anesbench.grading import METHODS, extract_answer

CORPUS = Path(__file__).resolve().parent.parent / "data" / "grader_corpus.jsonl"
LETTERS = "ABCDEFGH"


def _load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = _load()


def _grade(case: dict[str, Any]) -> str | None:
    return extract_answer(case["choices"], case["response"], finish_reason=case["finish_reason"]).pred


def test_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) >= 180
    for case in CASES:
        assert set(case) == {"id", "lang", "tags", "choices", "response", "finish_reason", "expected"}, case["id"]
        assert case["lang"] in ("en", "zh", "mixed"), case["id"]
        assert case["finish_reason"] in ("stop", "length"), case["id"]
        assert 2 <= len(case["choices"]) <= 8 and set(case["choices"]) <= set(LETTERS), case["id"]
        assert case["expected"] is None or case["expected"] in case["choices"], case["id"]
        assert case["tags"] and all(isinstance(t, str) for t in case["tags"]), case["id"]


def test_corpus_language_mix() -> None:
    langs = Counter(c["lang"] for c in CASES)
    n = len(CASES)
    assert langs["en"] / n >= 0.40 and langs["zh"] / n >= 0.40 and langs["mixed"] / n >= 0.08, langs


def test_every_tag_has_at_least_three_cases() -> None:
    tags = Counter(t for c in CASES for t in c["tags"])
    assert {t: k for t, k in tags.items() if k < 3} == {}


def test_accuracy_is_at_least_97_percent() -> None:
    wrong = [(c["id"], c["expected"], _grade(c)) for c in CASES if _grade(c) != c["expected"]]
    accuracy = 1 - len(wrong) / len(CASES)
    assert accuracy >= 0.97, f"accuracy {accuracy:.3f}; failing: {wrong}"


def test_never_guesses_where_no_answer_was_given() -> None:
    guesses = [(c["id"], _grade(c)) for c in CASES if c["expected"] is None and _grade(c) is not None]
    assert guesses == []


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_method_is_one_of_methods(case: dict[str, Any]) -> None:
    got = extract_answer(case["choices"], case["response"], finish_reason=case["finish_reason"])
    assert got.method in METHODS
    assert (got.pred is None) == got.method.startswith("none_")
