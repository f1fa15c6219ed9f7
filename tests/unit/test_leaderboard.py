"""Which runs the board shows, what it counts, and how it is drawn (rows and paper layout)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from anesbench.errors import NotFound
from anesbench.leaderboard import render_leaderboard
from anesbench.prompts import load_template
from anesbench.store import ResultRow, RunRecord, Store

CONTRACT = {"run_id", "model", "dataset", "language", "level", "correct", "total", "accuracy", "unanswered",
            "errors", "ci_low", "ci_high", "status"}


def _run(run_id: str, model: str = "m", *, max_tokens: int = 2048, temperature: float = 0.0, samples: int = 1,
         dataset: str = "d", languages: tuple[str, ...] = ("en",), dataset_sha256: str | None = None,
         item_limit: int | None = None) -> RunRecord:
    template = load_template(None)
    return RunRecord(
        id=run_id, model=model, endpoint="http://127.0.0.1:1/v1", dataset_name=dataset,
        dataset_sha256=dataset_sha256 or "s" + dataset, prompt_template=template.name, prompt_sha256=template.sha256,
        max_tokens=max_tokens, temperature=temperature, samples=samples, languages=list(languages),
        harness_version="0", config_hash=run_id, total=4, item_limit=item_limit,
    )


def _row(run_id: str, item: str, outcome: str, *, level: int = 1, sample: int = 0, language: str = "en",
         pred: str | None = None) -> ResultRow:
    """A stored result with the given outcome, written the way the runner writes it."""
    row = ResultRow(run_id=run_id, item_id=item, language=language, sample=sample, level=level, answer="A",
                    request_hash=f"{run_id}-{item}-{language}-{sample}", attempts=1)
    if outcome == "error":
        row.error, row.attempts = "HTTP 503 after 6 attempts", 6
        return row
    row.response, row.method = f"reply {item}", "test"
    row.pred = pred if pred is not None else {"correct": "A", "wrong": "B", "unanswered": None}[outcome]
    row.correct = row.pred == "A"
    return row


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "a.duckdb")
    yield db
    db.close()


def _add(store: Store, run: RunRecord, outcomes: list[str], status: str = "completed") -> None:
    store.begin_run(run)
    store.write_results([_row(run.id, f"i{n}", outcome) for n, outcome in enumerate(outcomes)])
    store.finish_run(run.id, status)


def _overall(rows, run_id: str):
    (row,) = [r for r in rows if r.run_id == run_id and r.level == "overall"]
    return row


def test_errors_are_counted_apart_and_never_lower_accuracy(store: Store) -> None:
    _add(store, _run("partial"), ["correct", "wrong", "unanswered", "error", "error", "correct"], "failed")
    row = _overall(store.leaderboard(["partial"]), "partial")
    assert (row.correct, row.total, row.unanswered, row.errors, row.status) == (2, 4, 1, 2, "failed")
    assert row.accuracy == 0.5


def test_a_run_that_never_got_a_response_has_no_graded_answers(store: Store) -> None:
    _add(store, _run("down"), ["error"] * 4, "failed")
    row = _overall(store.leaderboard(["down"]), "down")
    assert (row.correct, row.total, row.errors, row.accuracy) == (0, 0, 4, 0.0)
    table = render_leaderboard(store.leaderboard(["down"]), "table")
    assert "0.00" not in table and "failed" in table and "* m" in table


def test_default_board_takes_the_newest_completed_run_per_configuration(store: Store) -> None:
    _add(store, _run("old"), ["correct", "wrong"])
    _add(store, _run("new"), ["correct", "correct"])
    _add(store, _run("newest-failed"), ["error", "correct"], "failed")
    _add(store, _run("quick", max_tokens=256), ["wrong", "wrong"])
    shown = {row.run_id for row in store.leaderboard()}
    assert shown == {"new", "quick"}


def test_a_partial_run_after_a_full_one_does_not_replace_it_and_is_flagged(store: Store) -> None:
    _add(store, _run("full"), ["correct", "correct", "wrong", "correct"])
    _add(store, _run("tiny", item_limit=3), ["wrong", "wrong", "wrong"])
    assert {row.run_id for row in store.leaderboard()} == {"full"}
    assert {row.run_id for row in store.leaderboard(include_incomplete=True)} == {"full"}
    shown = store.leaderboard(["tiny"])
    assert {row.item_limit for row in shown} == {3}
    assert "first 3 items only" in render_leaderboard(shown, "table")
    assert {row["item_limit"] for row in json.loads(render_leaderboard(shown, "json"))} == {3}


def test_a_partial_run_is_shown_while_its_series_has_no_full_run(store: Store) -> None:
    _add(store, _run("tiny", item_limit=3), ["correct", "wrong", "wrong"])
    (row,) = [r for r in store.leaderboard() if r.level == "overall"]
    assert (row.run_id, row.item_limit, row.total) == ("tiny", 3, 3)


def test_the_same_dataset_name_with_other_content_is_another_series(store: Store) -> None:
    _add(store, _run("v1", dataset_sha256="aaa"), ["correct", "correct"])
    _add(store, _run("v2", dataset_sha256="bbb"), ["wrong", "wrong"])
    assert {row.run_id for row in store.leaderboard()} == {"v1", "v2"}


def test_a_file_written_before_the_item_limit_column_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    db = Store(path)
    _add(db, _run("old"), ["correct", "wrong"])
    db._con.execute("ALTER TABLE runs DROP COLUMN item_limit")
    db.close()
    old = Store(path, read_only=True)
    try:
        assert old.get_run("old").item_limit is None
        assert {row.item_limit for row in old.leaderboard()} == {None}
    finally:
        old.close()


def test_a_completed_run_with_errors_is_not_a_headline(store: Store) -> None:
    _add(store, _run("clean"), ["correct", "wrong"])
    _add(store, _run("errors"), ["correct", "error"], "completed")
    assert {row.run_id for row in store.leaderboard()} == {"clean"}


def test_include_incomplete_adds_the_newest_other_run_flagged(store: Store) -> None:
    _add(store, _run("clean"), ["correct", "wrong"])
    _add(store, _run("broken"), ["error", "correct"], "failed")
    rows = store.leaderboard(include_incomplete=True)
    assert {row.run_id for row in rows} == {"clean", "broken"}
    table = render_leaderboard(rows, "table")
    flagged = [line for line in table.splitlines() if line.startswith("* m")]
    assert len(flagged) == 1 and "broken" in flagged[0]
    assert "not a headline number" in table


def test_no_completed_run_means_an_empty_default_board(store: Store) -> None:
    _add(store, _run("down"), ["error"] * 2, "failed")
    assert store.leaderboard() == []
    assert "no completed runs" in render_leaderboard([], "table")


def test_explicit_runs_are_shown_whatever_their_status_and_unknown_ids_are_named(store: Store) -> None:
    _add(store, _run("a"), ["correct"])
    _add(store, _run("b"), ["error"], "cancelled")
    assert {row.run_id for row in store.leaderboard(["a", "b"])} == {"a", "b"}
    with pytest.raises(NotFound, match="'nope', 'gone'"):
        store.leaderboard(["a", "nope", "gone"])


def test_configuration_other_than_the_paper_is_shown_next_to_the_model(store: Store) -> None:
    _add(store, _run("paper"), ["correct"])
    _add(store, _run("hot", temperature=0.7, max_tokens=512), ["correct"])
    table = render_leaderboard(store.leaderboard(), "table")
    assert "m [max_tokens=512, T=0.7]" in table
    assert any(line.startswith("m ") and "[" not in line.split()[1] for line in table.splitlines()[2:])


def test_cells_carry_wilson_intervals_in_json_csv_and_plus_minus_in_text(store: Store) -> None:
    _add(store, _run("r"), ["correct"] * 8 + ["wrong"] * 2)
    rows = store.leaderboard(["r"])
    data = json.loads(render_leaderboard(rows, "json"))
    assert set(data[0]) >= CONTRACT
    overall = next(row for row in data if row["level"] == "overall")
    assert (round(overall["ci_low"], 4), round(overall["ci_high"], 4)) == (0.4902, 0.9433)
    parsed = list(csv.DictReader(io.StringIO(render_leaderboard(rows, "csv"))))
    assert float(parsed[-1]["ci_low"]) == pytest.approx(0.4902, abs=1e-4)
    # half-width (0.9433 - 0.4902) / 2 = 0.23
    assert "0.80 ±0.23" in render_leaderboard(rows, "markdown")


def test_samples_give_mean_majority_and_agreement(store: Store) -> None:
    run = _run("s", samples=3)
    store.begin_run(run)
    preds = {"i0": ["A", "B", "A"], "i1": ["A", "A", "A"], "i2": ["B", "C", None], "i3": ["B", "B", "A"]}
    store.write_results([_row("s", item, "correct" if p == "A" else "wrong" if p else "unanswered", sample=k, pred=p)
                         for item, ps in preds.items() for k, p in enumerate(ps)])
    store.finish_run("s", "completed")
    row = _overall(store.leaderboard(["s"]), "s")
    # sample 0: A A B B -> 0.5; sample 1: B A C B -> 0.25; sample 2: A A None A -> 0.75  => mean 0.5
    assert row.mean_accuracy == pytest.approx(0.5)
    # majority: i0 A (right), i1 A (right), i2 tie (no answer), i3 B (wrong) => 2/4
    assert row.majority_accuracy == 0.5
    # all samples agree only on i1 => 1/4
    assert row.agreement == 0.25
    assert "majority" in render_leaderboard([row], "table")


def test_paper_layout_has_one_row_per_model_groups_per_dataset_and_an_average(store: Store) -> None:
    store.begin_run(_run("a1", "alpha", dataset="AnesBench"))
    store.write_results([_row("a1", "i0", "correct", level=1), _row("a1", "i1", "wrong", level=2),
                         _row("a1", "i2", "correct", level=3), _row("a1", "i3", "correct", level=1)])
    store.finish_run("a1", "completed")
    store.begin_run(_run("a2", "alpha", dataset="AMCQA"))
    store.write_results([_row("a2", "i0", "correct", level=1), _row("a2", "i1", "wrong", level=1)])
    store.finish_run("a2", "completed")
    rows = store.leaderboard(["a1", "a2"])
    text = render_leaderboard(rows, "csv", "paper")
    header, line = list(csv.reader(io.StringIO(text)))
    assert header == ["LLM", "AnesBench system1", "AnesBench system1.x", "AnesBench system2", "AnesBench Overall",
                      "AMCQA system1", "AMCQA system1.x", "AMCQA system2", "AMCQA Overall", "Average", "Elicited",
                      "Average strict"]
    # AnesBench overall 3/4 = 0.75, AMCQA overall 1/2 = 0.50 -> average 0.625; no follow-ups: strict the same
    assert line == ["alpha", "1.00", "0.00", "1.00", "0.75", "0.50", "", "", "0.50", "0.62", "0", "0.62"]
    markdown = render_leaderboard(rows, "markdown", "paper")
    assert markdown.splitlines()[0].startswith("| LLM") and "Average" in markdown.splitlines()[0]


def _paper(store: Store) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render_leaderboard(store.leaderboard(), "csv", "paper"))))


def test_paper_layout_average_needs_every_dataset(store: Store) -> None:
    _add(store, _run("a1", "alpha", dataset="AnesBench"), ["correct", "wrong"])
    _add(store, _run("a2", "alpha", dataset="AMCQA"), ["correct", "correct", "correct", "wrong"])
    _add(store, _run("b1", "beta", dataset="AnesBench"), ["correct"])
    lines = {line["LLM"]: line for line in _paper(store)}
    assert (lines["alpha"]["AnesBench Overall"], lines["alpha"]["AMCQA Overall"]) == ("0.50", "0.75")
    assert lines["alpha"]["Average"] == f"{(0.5 + 0.75) / 2:.2f}"
    # beta has no AMCQA run: a mean over AnesBench alone would be another number, so none is shown
    assert (lines["beta"]["AnesBench Overall"], lines["beta"]["AMCQA Overall"], lines["beta"]["Average"]) == (
        "1.00", "", "")
    assert "| beta " in render_leaderboard(store.leaderboard(), "markdown", "paper")


def test_paper_layout_gives_a_second_series_of_one_dataset_name_its_own_line(store: Store) -> None:
    _add(store, _run("old", dataset="AMCQA", dataset_sha256="s-one"), ["correct", "wrong"])
    _add(store, _run("new", dataset="AMCQA", dataset_sha256="s-two"), ["correct", "correct"])
    lines = {line["LLM"]: line["AMCQA Overall"] for line in _paper(store)}
    assert lines == {"m (run old)": "0.50", "m (run new)": "1.00"}


def _elicited(row: ResultRow, letter: str) -> ResultRow:
    """What the runner stores when the follow-up turn gave ``letter`` for a reply the rules read as ``row``."""
    row.pred_rules, row.method_rules = row.pred, row.method
    row.pred, row.method, row.correct = letter, "elicited", letter == "A"
    row.elicitation, row.elicitation_response = "done", letter
    return row


def test_elicited_letters_count_and_the_strict_accuracy_is_the_rules_alone(store: Store) -> None:
    store.begin_run(_run("e"))
    rows = [_row("e", "i0", "correct"), _row("e", "i1", "wrong"),
            _elicited(_row("e", "i2", "unanswered"), "A"), _elicited(_row("e", "i3", "unanswered"), "B")]
    rows[0].pred_rules, rows[0].method_rules = "A", "test"  # rows of today carry the rules' verdict too
    store.write_results(rows)
    store.finish_run("e", "completed")
    overall = _overall(store.leaderboard("e"), "e")
    assert (overall.correct, overall.total, overall.unanswered, overall.elicited) == (2, 4, 0, 2)
    assert (overall.accuracy, overall.accuracy_strict) == (0.5, 0.25)
    payload = json.loads(render_leaderboard([overall], "json"))[0]
    assert (payload["elicited"], payload["accuracy_strict"], payload["elicit"]) == (2, 0.25, "unanswered")
    header, line = list(csv.reader(io.StringIO(render_leaderboard([overall], "csv"))))
    assert line[header.index("elicited")] == "2" and line[header.index("accuracy_strict")] == "0.25"
    table = render_leaderboard([overall], "markdown").splitlines()
    assert "elicited" in table[0] and "strict" in table[0] and "| 2 " in table[2] and "0.25" in table[2]


def test_under_all_the_rules_letter_stays_apart_from_the_models(store: Store) -> None:
    store.begin_run(_run("all"))
    store.write_results([_elicited(_row("all", "i0", "correct"), "B"), _elicited(_row("all", "i1", "wrong"), "A")])
    store.finish_run("all", "completed")
    overall = _overall(store.leaderboard("all"), "all")
    # the model's letters: B (wrong) and A (right); the rules': A (right) and B (wrong)
    assert (overall.accuracy, overall.accuracy_strict, overall.elicited) == (0.5, 0.5, 2)


def test_the_elicit_mode_is_part_of_the_series_and_shown_when_not_the_default(store: Store) -> None:
    for run_id, mode in (("r-off", "off"), ("r-default", "unanswered")):
        run = _run(run_id)
        run.elicit = mode
        _add(store, run, ["correct", "unanswered"])
    board = store.leaderboard()
    assert {row.run_id for row in board} == {"r-off", "r-default"}  # two configurations, both newest
    text = render_leaderboard(board, "table")
    assert "m [elicit=off]" in text and "\nm " in text
