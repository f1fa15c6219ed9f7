"""Paired comparison of two runs and en↔zh agreement, on outcomes built in the test."""

from __future__ import annotations

import json

import pytest

from anesbench.analysis import Outcome, compare_runs, language_agreement
from anesbench.analysis.compare import render_agreement, render_comparison
from anesbench.cli.exit_codes import message_for
from anesbench.errors import InvalidInput
from anesbench.stats import paired_bootstrap
from anesbench.store import RunRecord


def _run(run_id: str, sha: str = "s1", languages: tuple[str, ...] = ("en",)) -> RunRecord:
    return RunRecord(id=run_id, model=run_id, endpoint="", dataset_name="d", dataset_sha256=sha,
                     prompt_template="t", prompt_sha256="p", max_tokens=2048, temperature=0.0, samples=1,
                     languages=list(languages), harness_version="0", config_hash="h")


def _outcomes(marks: str, language: str = "en", level: int = 1, prefix: str = "q") -> list[Outcome]:
    """One outcome per character: c correct, w wrong, u unanswered, e error."""
    kinds = {"c": ("A", "correct"), "w": ("B", "wrong"), "u": (None, "unanswered"), "e": (None, "error")}
    return [Outcome(f"{prefix}{n}", language, 0, level, "A", *kinds[mark]) for n, mark in enumerate(marks)]


def test_paired_figures_for_a_small_case() -> None:
    # pairs: 1 both right, A only on 6, B only on 1, both wrong 2; one error dropped
    a = _outcomes("c" + "cccccc" + "w" + "wu" + "c")
    b = _outcomes("c" + "wwwwwu" + "c" + "ww" + "e")
    comparison = compare_runs(_run("a"), a, _run("b"), b)
    assert comparison.dropped == 1
    overall = next(c for c in comparison.cells if c.level == "overall")
    assert overall.pairs == 10
    assert (overall.accuracy_a, overall.accuracy_b) == (0.7, 0.2)
    assert overall.difference == pytest.approx(0.5)
    assert (overall.won, overall.lost) == (6, 1)
    assert overall.p_value == 0.125  # exact McNemar, 1 vs 6 (test_stats works it out)
    assert (overall.ci_low, overall.ci_high) == paired_bootstrap(6, 1, 10)
    assert overall.ci_low > 0  # A is better on these pairs, and the interval says so


def test_levels_and_all_languages_are_reported() -> None:
    a = _outcomes("cw", "en", 1) + _outcomes("cc", "en", 3, "r") + _outcomes("wc", "zh", 1)
    b = _outcomes("cc", "en", 1) + _outcomes("wc", "en", 3, "r") + _outcomes("ww", "zh", 1)
    comparison = compare_runs(_run("a", languages=("en", "zh")), a, _run("b", languages=("en", "zh")), b)
    cells = {(c.language, c.level): c for c in comparison.cells}
    assert set(cells) == {("en", "system1"), ("en", "system2"), ("en", "overall"), ("zh", "system1"),
                          ("zh", "overall"), ("all", "system1"), ("all", "system2"), ("all", "overall")}
    assert cells[("all", "overall")].pairs == 6
    assert (cells[("en", "system2")].won, cells[("en", "system2")].lost) == (1, 0)


def test_a_run_compared_with_itself_is_refused() -> None:
    with pytest.raises(InvalidInput, match="same run 'a'"):
        compare_runs(_run("a"), _outcomes("c"), _run("a"), _outcomes("c"))


def test_runs_on_different_datasets_are_refused() -> None:
    with pytest.raises(InvalidInput, match="different datasets"):
        compare_runs(_run("a", "s1"), _outcomes("c"), _run("b", "s2"), _outcomes("c"))


def test_runs_on_different_item_sets_are_refused() -> None:
    with pytest.raises(InvalidInput, match="different item sets"):
        compare_runs(_run("a"), _outcomes("cc"), _run("b"), _outcomes("ccc"))


def test_comparison_renders_as_json_table_and_markdown() -> None:
    comparison = compare_runs(_run("a"), _outcomes("ccw"), _run("b"), _outcomes("cww"))
    data = json.loads(render_comparison(comparison, "json"))
    assert data["run_a"] == "a" and data["cells"][-1]["won"] == 1
    assert "McNemar p" in render_comparison(comparison, "table")
    assert render_comparison(comparison, "markdown").startswith("| lang")


def test_en_zh_agreement_counts_the_same_letter_on_items_answered_in_both() -> None:
    en = [Outcome("q0", "en", 0, 1, "A", "A", "correct"), Outcome("q1", "en", 0, 1, "A", "B", "wrong"),
          Outcome("q2", "en", 0, 2, "A", None, "unanswered"), Outcome("q3", "en", 0, 2, "A", "A", "correct")]
    zh = [Outcome("q0", "zh", 0, 1, "A", "A", "correct"), Outcome("q1", "zh", 0, 1, "A", "C", "wrong"),
          Outcome("q2", "zh", 0, 2, "A", None, "unanswered"), Outcome("q3", "zh", 0, 2, "A", None, "error")]
    cells = {c.level: c for c in language_agreement(_run("r", languages=("en", "zh")), en + zh)}
    # q3 is dropped (error in zh); same letter only on q0 (two "no answer"s are not the same letter)
    assert cells["overall"].pairs == 3
    assert cells["overall"].same_letter == pytest.approx(1 / 3)
    assert (cells["overall"].accuracy_en, cells["overall"].accuracy_zh) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert cells["system1"].same_letter == 0.5
    assert "en↔zh" in render_agreement("r", list(cells.values()), "table")


def test_agreement_needs_both_languages() -> None:
    with pytest.raises(InvalidInput) as caught:
        language_agreement(_run("r"), _outcomes("c"))
    assert message_for(caught.value) == ("compare: run 'r' was asked in en only; en↔zh agreement needs a run with "
                                         "--languages en,zh")
