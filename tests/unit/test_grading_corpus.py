"""The answer grader over the labelled reply corpora.

``grader_corpus.jsonl`` holds replies written to cover reply shapes; the real-model replies are
declared in ``corpus_split.txt``, by model, as *tuning* (rules may be written from them) or
*held-out* (scored, never read to write a rule). The labels say what a careful human reading each
reply would say it committed to (null: no single answer). On every corpus the grader must never
give a letter other than the labelled one and never a letter where the label is null: it does not
guess. Tuning corpora with a floor must also reach it; held-out ones carry no tuned floor. A
declared file that is missing fails, as does a file under ``real/`` that the split does not declare.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from anesbench.errors import InvalidInput
from anesbench.grading import METHODS
from anesbench_testkit.corpus import FLOORS, Graded, grade, load, split, template_of

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
WRITTEN = DATA / "grader_corpus.jsonl"
REAL = DATA / "grader_corpus_real.jsonl"
DECLARED = split(DATA)
CORPORA = [pytest.param(WRITTEN, id="written")] + [pytest.param(d.path, id=f"{d.part}-{d.model}") for d in DECLARED]
TUNED_FLOORS = [pytest.param(path, id=path.name) for path in (WRITTEN, *(d.path for d in DECLARED if d.part == "tuning"))
                if path.name in FLOORS]
#: reply families that need many variants in both languages (the shapes most often misread)
HARD_FAMILIES = ("bracket_header", "option_verdicts", "best_fit", "option_content", "hard_negative")

_GRADED: dict[Path, list[Graded]] = {}


def _graded(path: Path) -> list[Graded]:
    if path not in _GRADED:
        _GRADED[path] = grade(load(path))
    return _GRADED[path]


def _seed_extractor() -> ModuleType:
    """bench/paper_style.py: the AnesBench paper's way of reading a letter, reproduced."""
    spec = importlib.util.spec_from_file_location("paper_style", ROOT / "bench" / "paper_style.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_real_reply_file_is_declared_in_the_split() -> None:
    declared = {d.path for d in DECLARED}
    assert sorted(p.name for p in (DATA / "real").glob("*.jsonl") if p not in declared) == []
    assert len(declared) == len(DECLARED) and REAL in declared


def test_written_corpus_size_and_language_mix() -> None:
    cases = load(WRITTEN)
    langs = Counter(c["lang"] for c in cases)
    n = len(cases)
    assert n >= 440
    assert langs["en"] / n >= 0.35 and langs["zh"] / n >= 0.40 and langs["mixed"] / n >= 0.08, langs


@pytest.mark.parametrize("family", HARD_FAMILIES)
def test_hard_family_has_variants_in_both_languages(family: str) -> None:
    langs = Counter(c["lang"] for c in load(WRITTEN) if family in c["tags"])
    assert sum(langs.values()) >= 20 and langs["en"] >= 5 and langs["zh"] >= 5, langs


def test_real_corpus_covers_both_languages_and_both_templates() -> None:
    cases = load(REAL)
    assert len(cases) >= 300
    assert all(any(t.startswith("real-") for t in c["tags"]) for c in cases)
    assert {c["lang"] for c in cases} >= {"en", "zh"}
    assert len({template_of(c) for c in cases} - {"-"}) >= 2
    assert any(c["finish_reason"] == "length" for c in cases)


def test_every_written_tag_has_at_least_three_cases() -> None:  # real replies' shape tags are as they came
    tags = Counter(t for c in load(WRITTEN) for t in c["tags"])
    assert {t: k for t, k in tags.items() if k < 3} == {}


@pytest.mark.parametrize("path", TUNED_FLOORS)
def test_accuracy_reaches_the_corpus_floor(path: Path) -> None:
    graded = _graded(path)
    failing = [(g.case["id"], g.case["expected"], g.got.pred, g.got.method) for g in graded if g.outcome != "ok"]
    accuracy = 1 - len(failing) / len(graded)
    assert accuracy >= FLOORS[path.name], f"accuracy {accuracy:.3f}; failing: {failing}"


@pytest.mark.parametrize("path", CORPORA)
def test_never_a_wrong_letter(path: Path) -> None:
    wrong = [(g.case["id"], g.case["expected"], g.got) for g in _graded(path) if g.outcome == "wrong_letter"]
    assert wrong == []


@pytest.mark.parametrize("path", CORPORA)
def test_never_guesses_where_no_answer_was_given(path: Path) -> None:
    guesses = [(g.case["id"], g.got) for g in _graded(path) if g.outcome == "false_answer"]
    assert guesses == []


@pytest.mark.parametrize("path", CORPORA)
def test_methods_are_from_the_closed_set_and_agree_with_the_letter(path: Path) -> None:
    bad = [(g.case["id"], g.got) for g in _graded(path)
           if g.got.method not in METHODS or (g.got.pred is None) != g.got.method.startswith("none_")]
    assert bad == []


def test_every_method_the_rules_can_give_occurs_in_the_written_corpus() -> None:
    # "elicited" is given by the run, never by the rules: a method no reply reaches is a dead name
    assert set(METHODS) - {g.got.method for g in _graded(WRITTEN)} == {"elicited"}


@pytest.mark.parametrize("path", CORPORA)
def test_more_right_than_the_seed_extractor_where_it_did_not_guess(path: Path) -> None:
    answer = _seed_extractor().ANSWER
    graded = _graded(path)
    seed_right = 0
    for g in graded:
        m = answer.search(g.case["response"])
        seed_right += m is not None and m.group(1).upper() == g.case["expected"]
    assert sum(g.outcome == "ok" and g.case["expected"] is not None for g in graded) >= seed_right


def test_a_malformed_split_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "corpus_split.txt").write_text("# comment\nreal/x.jsonl tuned SmolLM2\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"corpus_split\.txt:2: "):
        split(tmp_path)


def test_a_malformed_corpus_line_is_named_by_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = WRITTEN.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(good + "\n" + good.replace('"finish_reason": "stop"', '"finish_reason": "done"') + "\n",
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"c\.jsonl:2: field finish_reason"):
        load(path)
