"""Nightly runs through a real dispatcher, grader and stand-in model: a second run that gets 30 % of the
items wrong is a significant negative delta on /metrics; a third run equal to it is a delta of 0 at p = 1;
a restarted dispatcher shows the newest deltas again; a regraded run sends nothing to the model."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE
from tests.procs import Proc, run_cli, standin_control, standin_stats, start_dispatcher, start_grader, start_standin, wait_serving

MODEL = "nightly"
LABELS = {"model": MODEL, "dataset": "anesbench-sample", "language": "all"}


def _deltas(metrics_address: str) -> tuple[float, float]:
    """(delta, p-value) of the model's newest pairing across languages, from the dispatcher's /metrics."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {sample.name: sample.value for family in text_string_to_metric_families(text)
             for sample in family.samples if sample.labels == LABELS}
    return found["anesbench_accuracy_delta"], found["anesbench_accuracy_delta_pvalue"]


class Stack:
    def __init__(self, folder: Path) -> None:
        # Every reply commits to a letter and, at accuracy 1, to the right one.
        self.model = start_standin("--answer-key", str(SAMPLE), "--served-model", MODEL, "--accuracy", "1,1,1",
                                   "--unanswerable-rate", "0")
        self.grader, _ = start_grader()
        self.db = folder / "d.duckdb"
        self.dispatcher: Proc | None = None
        self.metrics = self.restart()

    def restart(self) -> str:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.dispatcher, self.metrics = start_dispatcher(self.grader.address, self.db)
        wait_serving(self.dispatcher.address)  # the deltas are loaded before it reports SERVING
        return self.metrics

    def run(self, run_id: str) -> None:
        assert self.dispatcher is not None
        result = run_cli("run", "--dispatcher", self.dispatcher.address, "--endpoint", self.model.address,
                         "--model", MODEL, "--dataset", str(SAMPLE), "--languages", "en,zh", "--run-id", run_id,
                         "--no-progress", timeout=180)
        assert result.returncode == 0, result.stderr

    def runs(self) -> dict[str, dict[str, object]]:
        assert self.dispatcher is not None
        result = run_cli("runs", "--dispatcher", self.dispatcher.address, "--format", "json")
        assert result.returncode == 0, result.stderr
        return {row["id"]: row for row in json.loads(result.stdout)}

    def stop(self) -> None:
        for proc in (self.dispatcher, self.grader, self.model):
            if proc is not None:
                proc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("deltas"))
    try:
        stack.run("night-1")
        standin_control(stack.model.address, accuracy={"1": 0.7, "2": 0.7, "3": 0.7})  # tonight's checkpoint
        stack.run("night-2")
        yield stack
    finally:
        stack.stop()


def test_a_run_wrong_on_30_percent_of_items_is_a_significant_drop(stack: Stack) -> None:
    delta, pvalue = _deltas(stack.metrics)
    assert -0.4 < delta < -0.2 and pvalue < 0.01
    runs = stack.runs()
    assert runs["night-1"]["delta"] is None
    assert (runs["night-2"]["delta"], runs["night-2"]["delta_pvalue"]) == (pytest.approx(delta), pytest.approx(pvalue))


def test_a_third_run_equal_to_the_second_is_no_change_and_a_restart_keeps_it(stack: Stack) -> None:
    stack.run("night-3")
    assert _deltas(stack.metrics) == (pytest.approx(0.0, abs=1e-9), pytest.approx(1.0))
    assert _deltas(stack.restart()) == (pytest.approx(0.0, abs=1e-9), pytest.approx(1.0))


def test_a_regrade_through_the_dispatcher_sends_nothing_and_continues_the_series(stack: Stack) -> None:
    assert stack.dispatcher is not None
    sent = standin_stats(stack.model.address)["requests"]
    result = run_cli("regrade", "night-2", "--dispatcher", stack.dispatcher.address, "--run-id", "night-2-regraded")
    assert result.returncode == 0, result.stderr
    assert "run_id=night-2-regraded status=completed" in result.stdout
    assert standin_stats(stack.model.address)["requests"] == sent
    # the same extractor: paired with the newest earlier clean run of the series, whose replies are the same
    assert stack.runs()["night-2-regraded"]["delta"] == pytest.approx(0.0, abs=1e-9)
    missing = run_cli("regrade", "no-such-run", "--dispatcher", stack.dispatcher.address)
    assert missing.returncode == 2, missing.stderr
