"""Pruning and backups of the store: counts survive, text goes, unfinished runs are untouched, the file shrinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from anesbench.errors import InvalidInput
from anesbench.leaderboard import render_leaderboard, render_runs
from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.database import file_bytes

ITEMS = 150
REPLY = "Let us reason step by step about the pharmacology of each option. " * 60  # ~4 KB, like real CoT


def _run(run_id: str, model: str, samples: int = 1) -> RunRecord:
    return RunRecord(
        id=run_id, model=model, endpoint="http://127.0.0.1:1/v1", dataset_name="d", dataset_sha256="s",
        prompt_template="t", prompt_sha256="p", max_tokens=16, temperature=0.0, samples=samples,
        languages=["en", "zh"], harness_version="0", config_hash=run_id, total=2 * ITEMS * samples,
    )


def _add(store: Store, run_id: str, model: str, status: str = "completed", errors: int = 0, samples: int = 1) -> None:
    store.begin_run(_run(run_id, model, samples))
    rows = []
    for n in range(ITEMS):
        failed = n < errors
        for language in ("en", "zh"):
            for sample in range(samples):
                pred = None if failed or (n + sample) % 7 == 0 else "AB"[(n + sample + len(run_id)) % 2]
                row = ResultRow(
                    run_id=run_id, item_id=f"i{n:04d}", language=language, sample=sample, level=1 + n % 3,
                    answer="A", request_hash=f"{run_id}-{n}-{language}-{sample}",
                    response=None if failed else f"{REPLY} {run_id} {n}", reasoning=None if failed else REPLY,
                    attempts=1, pred=pred, method="test", correct=None if failed else pred == "A",
                    error="HTTP 503" if failed else None, pred_rules=pred, method_rules=None if failed else "test")
                if not failed and pred is None and n % 2 == 0:  # the follow-up turn gave the model's own letter
                    row.pred, row.method, row.correct, row.elicitation = "A", "elicited", True, "done"
                rows.append(row)
    store.write_results(rows)
    if status != "running":
        store.finish_run(run_id, status)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "a.duckdb")
    # Series m1: three clean runs and a failed one; series m2: one clean run and one still running;
    # series m3: two runs of three samples per question.
    for run_id, model, status, errors, samples in (
            ("m1-a", "m1", "completed", 0, 1), ("m1-b", "m1", "failed", 5, 1), ("m1-c", "m1", "completed", 0, 1),
            ("m1-d", "m1", "completed", 0, 1), ("m2-a", "m2", "completed", 0, 1), ("m2-b", "m2", "running", 0, 1),
            ("m3-a", "m3", "completed", 0, 3), ("m3-b", "m3", "completed", 0, 3)):
        _add(db, run_id, model, status, errors, samples)
    yield db
    db.close()


def _views(store: Store) -> tuple[str, str, str]:
    """The default board, the board of every run named, and the run list, as JSON."""
    ids = [run.id for run in store.list_runs()]
    return (render_leaderboard(store.leaderboard(), "json"), render_leaderboard(store.leaderboard(ids), "json"),
            render_runs(store.list_runs(), "json"))


def test_keep_last_with_aggregates_keeps_every_count_and_drops_the_text(store: Store) -> None:
    before = _views(store)
    outcome = store.prune(keep_last=1, keep_aggregates=True)
    assert outcome.run_ids == ["m1-a", "m1-b", "m1-c", "m3-a"]
    assert _views(store) == before
    assert {row.mean_accuracy for row in store.leaderboard(["m3-a"])} != {None}  # sample figures kept too
    pruned = [row for row in store.leaderboard(["m1-a"]) if row.level == "overall"]
    assert all(row.elicited > 0 and row.accuracy_strict < row.accuracy for row in pruned)  # elicitation kept too
    assert all(store.results(run_id) == [] for run_id in outcome.run_ids)
    assert len(store.results("m1-d")) == 2 * ITEMS


def test_a_pruned_run_with_errors_never_becomes_the_clean_one(store: Store) -> None:
    store.prune(keep_last=1, keep_aggregates=True)
    store.finish_run("m1-d", "failed")  # the newest clean run is gone: only m1-c is left clean
    assert {row.run_id for row in store.leaderboard() if row.model == "m1"} == {"m1-c"}


def test_unfinished_runs_are_never_pruned(store: Store) -> None:
    store.prune(older_than_days=0, keep_aggregates=True)
    assert len(store.results("m2-b")) == 2 * ITEMS
    assert store.get_run("m2-b").status == "running"


def test_a_pruned_run_cannot_be_resumed_or_read_item_by_item(store: Store) -> None:
    store.prune(keep_last=1, keep_aggregates=True)
    with pytest.raises(InvalidInput, match="pruned"):
        store.begin_run(_run("m1-b", "m1"))
    assert store.get_run("m1-b").status == "failed"
    with pytest.raises(InvalidInput, match="pruned"):
        store.outcomes("m1-a")


def test_keep_last_counts_per_series(store: Store) -> None:
    assert store.prune_candidates(2, None) == ["m1-a", "m1-b"]


def test_without_aggregates_the_runs_are_deleted_and_the_board_stays(store: Store) -> None:
    board = render_leaderboard(store.leaderboard(), "json")
    outcome = store.prune(keep_last=1)
    assert {run.id for run in store.list_runs()} == {"m1-d", "m2-a", "m2-b", "m3-b"}
    assert render_leaderboard(store.leaderboard(), "json") == board
    assert not outcome.kept_aggregates


def test_the_file_shrinks_after_pruning(store: Store) -> None:
    store.close()  # every row checkpointed into the file, as a store at rest is
    reopened = Store(store.path)
    try:
        outcome = reopened.prune(keep_last=1, keep_aggregates=True)
    finally:
        reopened.close()
    assert outcome.bytes_after == file_bytes(store.path)
    assert outcome.bytes_after < outcome.bytes_before * 0.6, (outcome.bytes_before, outcome.bytes_after)


def test_pruning_twice_prunes_nothing_more(store: Store) -> None:
    store.prune(keep_last=1, keep_aggregates=True)
    views = _views(store)
    assert store.prune(keep_last=1, keep_aggregates=True).run_ids == []
    assert _views(store) == views


def test_exactly_one_limit_is_required(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.prune()
    with pytest.raises(InvalidInput):
        store.prune(keep_last=1, older_than_days=3)


def test_a_backup_reads_as_the_store(store: Store, tmp_path: Path) -> None:
    copy = tmp_path / "backup.duckdb"
    store.backup_to(str(copy))
    restored = Store(copy, read_only=True)
    try:
        assert _views(restored) == _views(store)
    finally:
        restored.close()
    with pytest.raises(InvalidInput):
        store.backup_to(str(copy))
