"""The items metric counts errors under result="error", apart from graded answers."""

from __future__ import annotations

from anesbench import metrics
from anesbench.engine.progress import RunProgress
from anesbench.store import ResultRow


def _value(model: str, result: str) -> float:
    return metrics.ITEMS_GRADED.labels(model, "en", "system1", result)._value.get()


def test_an_error_is_counted_as_error_not_unanswered() -> None:
    progress = RunProgress(model="progress-test", total=3)
    base = {"run_id": "r", "language": "en", "sample": 0, "level": 1, "answer": "A", "request_hash": "h"}
    progress.record(ResultRow(item_id="a", error="HTTP 503", **base))
    progress.record(ResultRow(item_id="b", response="no idea", pred=None, correct=False, **base))
    progress.record(ResultRow(item_id="c", response="A", pred="A", correct=True, **base))
    assert (_value("progress-test", "error"), _value("progress-test", "unanswered"),
            _value("progress-test", "correct")) == (1, 1, 1)
    assert (progress.failed, progress.done, progress.unanswered) == (1, 2, 1)
