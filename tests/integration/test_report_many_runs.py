"""`anesbench report` over a store of many runs: per-run tables capped with a stated note, the trend per
model, and the trend read from cell counts so that pruning keeps it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from anesbench.report.build import RUNS_LISTED
from anesbench.store import Store
from bench.many_runs import build
from tests.procs import run_cli

RUNS = 24  # 12 models x 2 nights: the board shows 12 runs, more than the report lists
ITEMS = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "many.duckdb"
    build(path, RUNS, ITEMS)
    return path


@pytest.fixture(scope="module")
def page(store: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = run_cli("report", "--db", str(store), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out.read_text(encoding="utf-8")


def _section(html: str, title: str) -> str:
    return html.split(f"<h2>{title}", 1)[1].split("<h2>", 1)[0]


def test_per_run_tables_list_the_first_runs_and_say_so(page: str) -> None:
    note = f"The first {RUNS_LISTED} of 12 runs, in board order"
    validity = _section(page, "Runs and what they used")
    assert note in validity
    assert len(re.findall(r"<tr><td class=\"t\">run-\d{5}</td>", validity)) == RUNS_LISTED
    assert note in _section(page, "Tokens and latency")
    assert page.count("wrong or unanswered</summary>") == RUNS_LISTED
    assert "model-011" in _section(page, "Leaderboard")  # the board stays whole


def test_the_trend_plot_shows_models_with_two_runs(page: str) -> None:
    trend = _section(page, "Accuracy over time per model")
    assert trend.count("<svg") == 1
    assert "The first 4 of 10 models." in trend  # the listed runs' models, each with two nights


def test_the_trend_of_a_pruned_run_is_its_counts(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(store.read_bytes())
    db = Store(copy)
    listed = ["run-00012", "run-00013"]
    before = db.trend(listed)
    assert db.prune(keep_last=1, keep_aggregates=True).run_ids  # the first night of every model
    assert db.trend(listed) == before
    assert {point.run_id for point in before} == {"run-00000", "run-00001", *listed}
    db.close()
