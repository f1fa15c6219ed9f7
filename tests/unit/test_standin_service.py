"""The stand-in's service-time model: heavy-tailed, deterministic per question, correlated across models."""

from __future__ import annotations

import math
import statistics

import pytest

from anesbench_testkit.standin.faults import FaultPlan, service_time


def _plan(**changes: object) -> FaultPlan:
    plan = FaultPlan()
    plan.update({"latency_dist": "lognormal", "latency_ms": 200.0, **changes})
    return plan


def test_lognormal_times_have_the_mean_the_spread_and_the_cap_asked_for() -> None:
    plan = _plan(sigma=1.0, model_sigma=0.3, latency_cap=25.0)
    times = [service_time(plan, "", f"question {n}", "model-a", seed=1) for n in range(20000)]
    assert statistics.fmean(times) == pytest.approx(0.2, rel=0.05)
    logs = [math.log(t) for t in times]
    assert statistics.pstdev(logs) == pytest.approx(math.hypot(1.0, 0.3), rel=0.05)
    assert max(times) <= 0.2 * 25 + 1e-12 and max(times) / min(times) > 100


def test_the_same_question_is_long_for_every_model_up_to_the_model_factor() -> None:
    plan = _plan(sigma=1.0, model_sigma=0.3)
    questions = [f"question {n}" for n in range(5000)]
    a = [math.log(service_time(plan, "", q, "model-a")) for q in questions]
    b = [math.log(service_time(plan, "", q, "model-b")) for q in questions]
    assert a == [math.log(service_time(plan, "", q, "model-a")) for q in questions]  # deterministic
    # log-times share the question's part (variance 1.0) and differ by two model parts (0.3 each)
    assert statistics.correlation(a, b) == pytest.approx(1.0 / (1.0 + 0.3 ** 2), abs=0.03)
    assert statistics.pstdev(x - y for x, y in zip(a, b, strict=True)) == pytest.approx(0.3 * math.sqrt(2), rel=0.05)
    other_seed = [math.log(service_time(plan, "", q, "model-a", seed=9)) for q in questions]
    assert abs(statistics.correlation(a, other_seed)) < 0.05  # --seed draws other question lengths


def test_uniform_times_and_bad_settings() -> None:
    plan = FaultPlan()
    plan.update({"latency_ms": 200.0, "jitter_ms": 20.0})
    times = {service_time(plan, f"key{n}", "q", "m") for n in range(200)}
    assert all(0.18 <= t <= 0.22 for t in times) and len(times) > 100
    with pytest.raises(ValueError, match="unknown latency distribution"):
        plan.update({"latency_dist": "pareto"})
