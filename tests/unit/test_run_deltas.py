"""A completed run is paired with the newest earlier clean run of its series: deltas stored, kept, published."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from anesbench.engine.regrade import record_delta
from anesbench.leaderboard import render_runs
from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.async_store import AsyncStore
from anesbench.wire.convert import run_from_pb, run_to_pb

ITEMS = 100


def _add(store: Store, run_id: str, wrong: int, *, errors: int = 0, item_limit: int | None = None,
         max_tokens: int = 16, model: str = "m") -> RunRecord:
    """A finished run whose first ``wrong`` items are answered wrong (the others right)."""
    record = RunRecord(id=run_id, model=model, endpoint="http://127.0.0.1:1/v1", dataset_name="d",
                       dataset_sha256="s", prompt_template="t", prompt_sha256="p", max_tokens=max_tokens,
                       temperature=0.0, samples=1, languages=["en", "zh"], harness_version="0",
                       config_hash=run_id, total=2 * ITEMS, item_limit=item_limit)
    store.begin_run(record)
    store.write_results([
        ResultRow(run_id=run_id, item_id=f"i{n:03d}", language=language, sample=0, level=1 + n % 3, answer="A",
                  request_hash=f"{run_id}{n}{language}", response=None if n < errors else "reply", attempts=1,
                  pred=None if n < errors else "B" if n < wrong else "A", correct=None if n < errors else n >= wrong,
                  error="HTTP 503" if n < errors else None)
        for n in range(ITEMS) for language in ("en", "zh")])
    return store.finish_run(run_id, "completed")


def _delta(store: Store, run: RunRecord) -> dict[str, tuple[str, float, float]]:
    async def go() -> dict[str, tuple[str, float, float]]:
        deltas = await record_delta(AsyncStore(store), run)
        return {d.language: (d.base_run_id, d.delta, d.pvalue) for d in deltas}
    return asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "a.duckdb")
    yield db
    db.close()


def test_a_drop_on_30_percent_of_items_is_a_significant_negative_delta(store: Store) -> None:
    assert _delta(store, _add(store, "first", 0)) == {}  # the first run of its series
    deltas = _delta(store, _add(store, "second", 30))
    assert set(deltas) == {"en", "zh", "all"}
    base, delta, pvalue = deltas["all"]
    assert base == "first" and delta == pytest.approx(-0.3) and pvalue < 1e-10
    assert REGISTRY.get_sample_value("anesbench_accuracy_delta", {"model": "m", "dataset": "d", "language": "en"}) \
        == pytest.approx(-0.3)
    assert (store.get_run("second").delta, store.get_run("first").delta) == (pytest.approx(-0.3), None)
    assert store.get_run("second").delta_pvalue == pytest.approx(pvalue)


def test_a_run_equal_to_the_one_before_has_delta_zero_and_p_one(store: Store) -> None:
    _add(store, "first", 30)
    assert _delta(store, _add(store, "second", 30))["all"][1:] == (0.0, 1.0)


def test_partial_runs_runs_with_errors_and_other_configurations_are_never_paired(store: Store) -> None:
    _add(store, "base", 0)
    assert _delta(store, _add(store, "partial", 30, item_limit=ITEMS)) == {}
    assert _delta(store, _add(store, "errors", 30, errors=2)) == {}
    assert _delta(store, _add(store, "longer", 30, max_tokens=32)) == {}  # a new series starts
    assert _delta(store, _add(store, "other-model", 30, model="n")) == {}
    assert _delta(store, _add(store, "next", 10))["all"][0] == "base"  # none of them became the base


def test_deltas_survive_pruning_and_the_newest_per_model_is_what_metrics_show(store: Store) -> None:
    _add(store, "a", 0)
    _delta(store, _add(store, "b", 30))
    _delta(store, _add(store, "c", 20))
    assert store.prune(keep_last=1, keep_aggregates=True).run_ids == ["a", "b"]
    assert store.get_run("b").delta == pytest.approx(-0.3)
    newest = {(model, dataset, d.language): (d.run_id, d.base_run_id) for model, dataset, d in store.newest_deltas()}
    assert newest == {("m", "d", language): ("c", "b") for language in ("en", "zh", "all")}


def test_a_deleted_run_takes_its_own_deltas_along(store: Store) -> None:
    _add(store, "a", 0)
    _delta(store, _add(store, "b", 30))
    _delta(store, _add(store, "c", 20))
    assert store.prune(keep_last=1).run_ids == ["a", "b"]
    assert store._con.execute("SELECT DISTINCT run_id FROM run_deltas").fetchall() == [("c",)]
    assert store.get_run("c").delta == pytest.approx(0.1)


def test_a_store_written_before_deltas_opens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old = Store(path)
    _add(old, "a", 0)
    old._con.execute("DROP TABLE run_deltas")
    old.close()
    reader = Store(path, read_only=True)
    assert [(run.id, run.delta) for run in reader.list_runs()] == [("a", None)]
    assert reader.newest_deltas() == []
    reader.close()


def test_the_run_list_and_the_grpc_run_carry_the_delta_and_its_p(store: Store) -> None:
    _add(store, "first", 0)
    _delta(store, _add(store, "second", 30))
    first, second = store.list_runs()
    assert [(run.delta, run.delta_pvalue) for run in map(run_from_pb, map(run_to_pb, (first, second)))] == [
        (None, None), (second.delta, second.delta_pvalue)]
    rows = json.loads(render_runs([first, second], "json"))
    assert [(row["delta"], row["delta_pvalue"] < 0.01 if row["delta_pvalue"] else None) for row in rows] == [
        (None, None), (pytest.approx(-0.3), True)]
    assert "-0.300" in render_runs([second], "table").splitlines()[-1]
