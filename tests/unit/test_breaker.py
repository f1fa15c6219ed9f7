"""The circuit breaker's decisions, on a fake clock (no timing assertions)."""

from __future__ import annotations

from datetime import datetime

import pytest

from anesbench.engine.config import RunConfig, config_hash, limited
from anesbench.errors import InvalidInput
from anesbench.inference.constraints import served_models
from anesbench.inference.endpoint import server_root, validate_endpoint
from anesbench.inference.router import MIN_FAILURES, CircuitBreaker

A, B = "http://10.0.0.1:30000/v1", "http://10.0.0.2:30000/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(*urls: str, threshold: int = 20, window: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(urls, threshold=threshold, window=window, clock=clock,
                          wall=lambda: datetime(2026, 1, 2, 12, 3, 41)), clock


def test_opens_after_threshold_consecutive_outage_failures_with_the_cause() -> None:
    breaker, _ = _breaker(A, threshold=20)
    for _ in range(19):
        breaker.failure(A, "connection_error", "connection failed: connection refused")
    assert not breaker.open
    breaker.failure(A, "connection_error", "connection failed: connection refused")
    assert breaker.open and breaker.opened.is_set()
    assert breaker.cause() == f"endpoint {A} unreachable since 12:03:41: connection failed: connection refused"


def test_a_success_resets_the_count() -> None:
    breaker, _ = _breaker(A, threshold=5)
    for _ in range(4):
        breaker.failure(A, "server_error", "HTTP 503")
    breaker.success(A)
    for _ in range(4):
        breaker.failure(A, "server_error", "HTTP 503")
    assert not breaker.open


@pytest.mark.parametrize("cause", ["rate_limited", "bad_payload", "client_error"])
def test_pushback_and_bad_replies_are_not_an_outage(cause: str) -> None:
    breaker, _ = _breaker(A, threshold=3)
    for _ in range(50):
        breaker.failure(A, cause, "HTTP 429")
    assert not breaker.open


@pytest.mark.parametrize("cause", ["connection_error", "server_error", "timeout"])
def test_connection_errors_5xx_and_timeouts_count(cause: str) -> None:
    breaker, _ = _breaker(A, threshold=3)
    for _ in range(3):
        breaker.failure(A, cause, "x")
    assert breaker.open


def test_a_healthy_replica_keeps_the_model_running() -> None:
    breaker, clock = _breaker(A, B, threshold=20)
    breaker.success(B)
    for _ in range(100):
        breaker.failure(A, "connection_error", "refused")
        clock.now += 1
    assert not breaker.open
    breaker.failure(B, "connection_error", "refused")  # now B fails too: both failing, 101 in a row
    assert breaker.open
    assert breaker.cause().count("unreachable since") == 2


def test_an_endpoint_never_tried_is_not_counted_as_down() -> None:
    breaker, _ = _breaker(A, B, threshold=5)
    for _ in range(10):
        breaker.failure(A, "connection_error", "refused")
    assert not breaker.open


def test_few_requests_open_it_after_the_window() -> None:
    breaker, clock = _breaker(A, threshold=20, window=10.0)
    for _ in range(MIN_FAILURES):
        breaker.failure(A, "timeout", "no answer within 600 s")
        clock.now += 3
    assert not breaker.open  # failing for 6 s only
    clock.now += 4
    breaker.failure(A, "timeout", "no answer within 600 s")
    assert breaker.open


def test_once_open_it_stays_open() -> None:
    breaker, _ = _breaker(A, threshold=2)
    breaker.failure(A, "connection_error", "refused")
    breaker.failure(A, "connection_error", "refused")
    breaker.success(A)
    assert breaker.open


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "http://127.0.0.1:0/v1", "http://h:port/v1",
                                 "http://u:secret@h:70000/v1"])
def test_bad_ports_are_refused_without_the_credentials(url: str) -> None:
    with pytest.raises(InvalidInput, match="the port must be a number from 1 to 65535") as caught:
        validate_endpoint(url)
    assert caught.value.field == "endpoints" and "secret" not in str(caught.value)


def test_server_root_and_served_ids() -> None:
    assert server_root("http://h:30000/v1") == "http://h:30000"
    assert server_root("http://h/openai/v1/") == "http://h/openai"
    assert server_root("http://h:8080") == "http://h:8080"
    assert served_models({"object": "list", "data": [{"id": "a", "owned_by": "vllm"}, {"id": "b"}, {"x": 1}]}) == \
        {"a": "vllm", "b": None}
    assert served_models({"data": []}) == {}
    assert served_models("<html>") is None


def test_limit_cuts_the_dataset_and_is_part_of_the_identity() -> None:
    from anesbench.dataset import Dataset, Item, LocalizedQuestion
    from anesbench.prompts import load_template

    items = [Item(f"q{n}", 2, "A", 1, {"en": LocalizedQuestion("?", {"A": "x", "B": "y"})}) for n in range(5)]
    dataset = Dataset("d", "0" * 64, items)
    cut = limited(dataset, 2)
    assert len(cut.items) == 2 and [item.id for item in cut.items] == ["q0", "q1"]
    assert limited(dataset, None) is dataset
    template = load_template(None)
    whole = RunConfig(model="m", endpoints=("http://h/v1",))
    assert config_hash(whole, dataset, template) != config_hash(RunConfig(model="m", endpoints=("http://h/v1",),
                                                                          limit=2), dataset, template)
    with pytest.raises(InvalidInput) as caught:
        RunConfig(model="m", endpoints=("http://h/v1",), limit=0)
    assert caught.value.field == "limit"


def test_the_window_is_checked_even_when_no_attempt_ends_then() -> None:
    """All requests are waiting in backoff: the breaker still opens when the window is over."""
    import asyncio

    async def scenario() -> bool:
        breaker = CircuitBreaker([A], threshold=20, window=0.05)
        for _ in range(MIN_FAILURES):
            breaker.failure(A, "connection_error", "refused")
        await asyncio.wait_for(breaker.opened.wait(), 10)  # no further failure is reported
        return breaker.open

    assert asyncio.run(scenario())
