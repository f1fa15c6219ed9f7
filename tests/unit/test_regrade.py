"""anesbench regrade: stored replies graded again by the current extractor into a new run, nothing sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from anesbench.cli.main import main
from anesbench.dataset import Dataset, load_dataset
from anesbench.engine.regrade import regrade_run
from anesbench.errors import ConfigConflict, InvalidInput, NotFound
from anesbench.grader import LocalGrader
from anesbench.grading import EXTRACTOR_VERSION
from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.async_store import AsyncStore
from tests.conftest import make_records

ITEMS = 12


@pytest.fixture
def dataset(write_jsonl: Callable[..., Path]) -> Dataset:
    return load_dataset(write_jsonl(make_records(ITEMS)), ("en",))


def _stored(store: Store, dataset: Dataset, run_id: str = "old", elicit: str = "off", status: str = "completed",
            scoring: str = "generate") -> None:
    """A run graded by an older extractor that read no letter in any reply; under --elicit all the follow-up
    gave the model's own letter "A" for every item."""
    store.begin_run(RunRecord(
        id=run_id, model="m", endpoint="http://127.0.0.1:1/v1", dataset_name=dataset.name,
        dataset_sha256=dataset.sha256, prompt_template="t", prompt_sha256="p", max_tokens=16, temperature=0.0,
        samples=1, languages=["en"], harness_version="0", config_hash=run_id, total=ITEMS,
        extractor_version="0-old", elicit=elicit, scoring=scoring))
    rows = []
    for item in dataset.items:
        row = ResultRow(run_id=run_id, item_id=item.id, language="en", sample=0, level=item.level,
                        answer=item.answer, request_hash=item.id, response=f"Answer: {item.answer}", attempts=1,
                        pred=None, method="none", correct=False, pred_rules=None, method_rules="none")
        if elicit == "all":
            row.pred, row.method, row.correct, row.elicitation = "A", "elicited", item.answer == "A", "done"
        rows.append(row)
    store.write_results(rows)
    if status != "running":
        store.finish_run(run_id, status)


def _regrade(store: Store, dataset: Dataset, run_id: str = "old", new_id: str | None = "new") -> RunRecord:
    return asyncio.run(regrade_run(AsyncStore(store), LocalGrader(), dataset, run_id, new_id))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "a.duckdb")
    yield db
    db.close()


def test_the_replies_are_graded_again_into_a_new_run_of_the_current_extractor(store: Store, dataset: Dataset) -> None:
    _stored(store, dataset)
    run = _regrade(store, dataset)
    assert (run.id, run.status, run.correct, run.extractor_version) == ("new", "completed", ITEMS, EXTRACTOR_VERSION)
    old, new = store.results("old"), store.results("new")
    assert [row.response for row in new] == [row.response for row in old]
    assert {row.reused_from for row in new} == {"old"} and all(row.pred == row.answer for row in new)
    assert run.delta is None  # another extractor version: a new series, never compared across
    again = _regrade(store, dataset, "new", "newer")  # the same version: its series continues
    assert (again.delta, again.delta_pvalue) == (0.0, 1.0)


def test_the_model_s_own_letter_stays_under_elicit_all(store: Store, dataset: Dataset) -> None:
    _stored(store, dataset, elicit="all")
    new = store.results(_regrade(store, dataset).id)
    assert {(row.pred, row.method) for row in new} == {("A", "elicited")}
    assert all(row.pred_rules == row.answer for row in new)


def test_unknown_unfinished_and_mismatched_runs_are_refused(store: Store, dataset: Dataset,
                                                            write_jsonl: Callable[..., Path]) -> None:
    _stored(store, dataset)
    _stored(store, dataset, "busy", status="running")
    _stored(store, dataset, "lp", scoring="logprobs")
    with pytest.raises(NotFound):
        _regrade(store, dataset, "nope")
    with pytest.raises(InvalidInput, match="is running"):
        _regrade(store, dataset, "busy")
    with pytest.raises(InvalidInput, match="log-probabilities"):
        _regrade(store, dataset, "lp")
    with pytest.raises(ConfigConflict):
        _regrade(store, dataset, "old", "busy")
    other = load_dataset(write_jsonl(make_records(ITEMS + 1), "other.jsonl"), ("en",))
    with pytest.raises(InvalidInput, match="not the dataset"):
        _regrade(store, other)
    assert [run.id for run in store.list_runs()] == ["old", "busy", "lp"]  # nothing written


def test_the_cli_exits_2_on_an_unknown_or_unfinished_run(tmp_path: Path, dataset: Dataset,
                                                         write_jsonl: Callable[..., Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.duckdb"
    store = Store(db)
    _stored(store, dataset)
    _stored(store, dataset, "busy", status="running")
    store.close()
    path = str(write_jsonl(make_records(ITEMS)))
    for run_id in ("nope", "busy"):
        assert main(["regrade", run_id, "--db", str(db), "--dataset", path]) == 2
    assert main(["regrade", "old", "--db", str(db)]) == 2  # no --dataset
    assert main(["regrade", "old", "--db", str(db), "--dataset", path, "--run-id", "fresh"]) == 0
    assert "run_id=fresh status=completed" in capsys.readouterr().out
