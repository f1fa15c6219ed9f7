"""Calibration on the board: Brier score and ECE per cell, worked out by hand for tiny stores, through
every format, the wire, pruning, files from before, and the report's reliability diagram."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from anesbench.cli.sources import EmbeddedSource
from anesbench.leaderboard import render_leaderboard
from anesbench.report import build_report
from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.leaderboard_sql import LeaderboardRow, ReliabilityBin
from anesbench.wire.convert import leaderboard_from_pb, leaderboard_to_pb

# Four items, answer A. (level, letter probabilities, graded letter)
LOGPROB_ITEMS = {
    "i1": (1, {"A": 0.7, "B": 0.2, "C": 0.1}, "A"),  # right at 0.70, Brier 0.3² + 0.2² + 0.1² = 0.14
    "i2": (1, {"A": 0.4, "B": 0.6}, "B"),  # wrong at 0.60, Brier 0.6² + 0.6² = 0.72
    "i3": (3, {"A": 0.95, "B": 0.05}, "A"),  # right at 0.95, Brier 0.05² + 0.05² = 0.005
    "i4": (3, {"A": 0.25, "B": 0.75}, "B"),  # wrong at 0.75, Brier 0.75² + 0.75² = 1.125
}
# Overall: Brier (0.14 + 0.72 + 0.005 + 1.125) / 4 = 0.4975. Bins: 6 {i2}: |0 − 0.6| = 0.6; 7 {i1, i4}: |1 − 1.45|
# = 0.45 (not 0.3 + 0.75: the bin's accuracy against its mean confidence); 9 {i3}: |1 − 0.95| = 0.05;
# ECE = (0.6 + 0.45 + 0.05) / 4 = 0.275.
# system1 {i1, i2}: Brier 0.86 / 2 = 0.43, ECE (0.6 + 0.3) / 2 = 0.45.
# system2 {i3, i4}: Brier 1.13 / 2 = 0.565, ECE (0.05 + 0.75) / 2 = 0.4.
CALIBRATION_COLUMNS = ("brier", "ece", "reliability")  # the run_cells columns added with calibration
EXPECTED = {"overall": (0.4975, 0.275), "system1": (0.43, 0.45), "system2": (0.565, 0.4)}


def _run(run_id: str, samples: int = 1, model: str = "m") -> RunRecord:
    return RunRecord(id=run_id, model=model, endpoint="http://127.0.0.1:1/v1", dataset_name="d", dataset_sha256="s",
                     prompt_template="t", prompt_sha256="p", max_tokens=1, temperature=0.0, samples=samples,
                     languages=["en"], harness_version="0", config_hash=run_id, total=4 * samples)


def _result(run_id: str, item: str, level: int, pred: str | None, sample: int = 0) -> ResultRow:
    return ResultRow(run_id=run_id, item_id=item, language="en", sample=sample, level=level, answer="A",
                     request_hash=f"{run_id}-{item}-{sample}", attempts=1, response="reply", pred=pred,
                     method="test", correct=pred == "A")


def add_logprob_run(store: Store, run_id: str, model: str = "m") -> None:
    """The rows a logprobs run writes: ``letter_probs`` set, ``pred`` its argmax, method ``logprob``."""
    store.begin_run(_run(run_id, model=model))
    rows = [_result(run_id, item, level, pred) for item, (level, _, pred) in LOGPROB_ITEMS.items()]
    for row in rows:
        row.method = "logprob"
    store.write_results(rows)
    for item, (_, probs, _) in LOGPROB_ITEMS.items():
        store._con.execute("UPDATE results SET letter_probs = ?, letter_probs_complete = true "
                           "WHERE run_id = ? AND item_id = ?", [json.dumps(probs), run_id, item])
    store.finish_run(run_id, "completed")


def add_generative_run(store: Store, run_id: str, model: str = "m") -> None:
    """One sample per question: no confidence to calibrate."""
    store.begin_run(_run(run_id, model=model))
    store.write_results([_result(run_id, item, level, "A") for item, (level, _, _) in LOGPROB_ITEMS.items()])
    store.finish_run(run_id, "completed")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "a.duckdb")
    yield db
    db.close()


def _cells(rows: list[LeaderboardRow]) -> dict[str, tuple[float | None, float | None]]:
    return {row.level: (row.brier, row.ece) for row in rows}


def test_a_logprob_run_has_brier_and_ece_per_level_and_overall(store: Store) -> None:
    add_logprob_run(store, "lp")
    cells = _cells(store.leaderboard(["lp"]))
    assert cells.keys() == EXPECTED.keys()
    for level, (brier, ece) in EXPECTED.items():
        assert cells[level] == (pytest.approx(brier), pytest.approx(ece)), level
    (overall,) = [row for row in store.leaderboard(["lp"]) if row.level == "overall"]
    assert [(b.bin, b.n, b.correct) for b in overall.reliability] == [(6, 1, 0), (7, 2, 1), (9, 1, 1)]
    assert [b.confidence for b in overall.reliability] == pytest.approx([0.6, 1.45, 0.95])


def test_samples_give_ece_from_the_majority_share_and_no_brier(store: Store) -> None:
    # answer A. i1: A A B, majority A right at 2/3 (bin 6). i2: B B B, wrong at 1 (bin 9). i3: A B no answer,
    # a tie: wrong at 1/3 (bin 3); its fourth sample is an error and is no vote. i4: A A A, right at 1 (bin 9).
    # ECE = (|1 − 2/3| + |1 − 2| + |0 − 1/3|) / 4 = 5/12.
    store.begin_run(_run("votes", samples=3))
    votes = {"i1": ("A", "A", "B"), "i2": ("B", "B", "B"), "i3": ("A", "B", None), "i4": ("A", "A", "A")}
    rows = [_result("votes", item, 1, pred, sample) for item, preds in votes.items()
            for sample, pred in enumerate(preds)]
    failed = _result("votes", "i3", 1, None, 3)
    failed.response, failed.error = None, "HTTP 503"
    store.write_results([*rows, failed])
    store.finish_run("votes", "completed")
    (overall,) = [row for row in store.leaderboard(["votes"]) if row.level == "overall"]
    assert overall.brier is None
    assert overall.ece == pytest.approx(5 / 12)
    assert [(b.bin, b.n, b.correct) for b in overall.reliability] == [(3, 1, 0), (6, 1, 1), (9, 2, 1)]


def test_a_generative_run_with_one_sample_has_no_calibration(store: Store) -> None:
    add_generative_run(store, "gen")
    rows = store.leaderboard(["gen"])
    assert {(row.brier, row.ece, row.reliability) for row in rows} == {(None, None, ())}
    assert "Brier" not in render_leaderboard(rows, "table") and "ECE" not in render_leaderboard(rows, "markdown",
                                                                                                 "paper")


def test_every_format_and_the_paper_layout_carry_the_figures(store: Store) -> None:
    add_logprob_run(store, "lp")
    rows = store.leaderboard(["lp"])
    (overall,) = [row for row in json.loads(render_leaderboard(rows, "json")) if row["level"] == "overall"]
    assert (overall["brier"], overall["ece"]) == (pytest.approx(0.4975), pytest.approx(0.275))
    header = render_leaderboard(rows, "csv").splitlines()[0]
    assert {"brier", "ece"} <= set(header.split(","))
    for fmt in ("table", "markdown"):
        text = render_leaderboard(rows, fmt)
        assert "Brier" in text and "ECE" in text and "0.275" in text, fmt  # three decimals
    (paper,) = json.loads(render_leaderboard(rows, "json", "paper"))
    assert (float(paper["d Brier"]), paper["d ECE"]) == (pytest.approx(0.4975, abs=1e-3), "0.275")  # rounded
    assert "d ECE" in render_leaderboard(rows, "csv", "paper").splitlines()[0]


def test_the_figures_and_bins_survive_the_wire(store: Store) -> None:
    add_logprob_run(store, "lp")
    add_generative_run(store, "gen")
    rows = store.leaderboard(["lp", "gen"])
    assert leaderboard_from_pb(leaderboard_to_pb(rows)) == rows


def test_a_pruned_logprob_run_keeps_its_calibration(store: Store) -> None:
    add_logprob_run(store, "old")
    add_logprob_run(store, "new")  # the board's run of the series: "old" is the one pruning picks
    before = store.leaderboard(["old"])
    assert store.prune(keep_last=1, keep_aggregates=True).run_ids == ["old"]
    assert store.leaderboard(["old"]) == before
    assert _cells(before)["overall"] == (pytest.approx(0.4975), pytest.approx(0.275))


def test_a_file_from_before_calibration_reads_it_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    store = Store(path)
    add_logprob_run(store, "old")
    add_logprob_run(store, "new")
    store.prune(keep_last=1, keep_aggregates=True)
    store.close()
    with duckdb.connect(str(path)) as con:  # run_cells as the release before calibration wrote it
        for name in CALIBRATION_COLUMNS:
            con.execute(f"ALTER TABLE run_cells DROP COLUMN {name}")
    old = Store(path, read_only=True)
    try:
        (overall,) = [row for row in old.leaderboard(["old"]) if row.level == "overall"]
        assert (overall.correct, overall.total, overall.brier, overall.ece, overall.reliability) == (2, 4, None, None, ())
    finally:
        old.close()
    Store(path).close()  # opened for writing, run_cells gets the columns
    with duckdb.connect(str(path), read_only=True) as con:
        columns = {name for (name,) in con.execute("SELECT column_name FROM duckdb_columns() "
                                                    "WHERE table_name = 'run_cells'").fetchall()}
    assert set(CALIBRATION_COLUMNS) <= columns


def test_a_file_from_before_pruning_opened_read_only_still_computes_calibration(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    store = Store(path)
    add_logprob_run(store, "lp")
    store.close()
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE run_cells")
    old = Store(path, read_only=True)
    try:
        assert _cells(old.leaderboard(["lp"]))["overall"] == (pytest.approx(0.4975), pytest.approx(0.275))
    finally:
        old.close()


def test_the_report_draws_a_reliability_diagram_per_calibrated_run(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    store = Store(path)
    add_logprob_run(store, "lp", model="base-ckpt")
    add_generative_run(store, "gen")
    store.close()
    source = EmbeddedSource(str(path))
    try:
        html = build_report(source, ["lp", "gen"], [])
    finally:
        source.close()
    section = html.split("<h2>Calibration (reliability diagram)</h2>")[1].split("</section>")[0]
    assert "<h3>lp (base-ckpt)</h3>" in section and "<h3>gen" not in section
    assert section.count("<svg") == 1


def test_a_report_without_calibrated_runs_says_what_it_needs(store: Store, tmp_path: Path) -> None:
    add_generative_run(store, "gen")
    store.close()
    source = EmbeddedSource(str(tmp_path / "a.duckdb"))
    try:
        html = build_report(source, ["gen"], [])
    finally:
        source.close()
    section = html.split("<h2>Calibration (reliability diagram)</h2>")[1].split("</section>")[0]
    assert "<svg" not in section and "log-probabilities" in section


def test_reliability_bins_are_the_ones_ece_is_computed_from(store: Store) -> None:
    add_logprob_run(store, "lp")
    (overall,) = [row for row in store.leaderboard(["lp"]) if row.level == "overall"]
    assert isinstance(overall.reliability[0], ReliabilityBin)
    recomputed = sum(abs(b.correct - b.confidence) for b in overall.reliability) / sum(b.n for b in overall.reliability)
    assert overall.ece == pytest.approx(recomputed)
