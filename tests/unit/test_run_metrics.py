"""Run-level metrics carry the dataset and configuration, and a cancelled run's series go away
(so that the stalled-run alert stops and no accuracy comparison uses a run stopped on purpose)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from anesbench.engine.progress import RunProgress
from anesbench.store.records import ResultRow


def _row(n: int, correct: bool) -> ResultRow:
    return ResultRow(run_id="r", item_id=f"q{n}", language="en", sample=0, level=1, answer="A", request_hash="h",
                     pred="A" if correct else "B", correct=correct)


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_two_datasets_of_one_model_keep_their_own_series() -> None:
    easy = RunProgress(model="m-metrics", total=4, dataset="easy", config="cot/t0/max2048/n1")
    hard = RunProgress(model="m-metrics", total=4, dataset="hard", config="cot/t0/max2048/n1")
    for n in range(4):
        easy.record(_row(n, True))
        hard.record(_row(n, n == 0))
    easy.publish()
    hard.publish()
    common = {"model": "m-metrics", "config": "cot/t0/max2048/n1", "language": "en", "level": "overall"}
    assert _value("anesbench_run_accuracy", dataset="easy", **common) == 1.0
    assert _value("anesbench_run_accuracy", dataset="hard", **common) == 0.25
    assert _value("anesbench_run_items", model="m-metrics", dataset="hard", config="cot/t0/max2048/n1",
                  state="done") == 4


def test_a_cancelled_run_forgets_its_series() -> None:
    progress = RunProgress(model="m-cancel", total=10, dataset="d", config="c")
    progress.record(_row(1, True))
    progress.publish()
    labels = {"model": "m-cancel", "dataset": "d", "config": "c"}
    assert _value("anesbench_run_items", state="total", **labels) == 10
    progress.forget()
    assert _value("anesbench_run_items", state="total", **labels) is None
    assert _value("anesbench_run_accuracy", language="en", level="overall", **labels) is None
    assert _value("anesbench_run_accuracy", language="en", level="system1", **labels) is None
