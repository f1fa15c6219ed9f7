"""Retry policy for inference attempts: exponential backoff with jitter that honours Retry-After.

Written against our exception classes: only :class:`RetryableInferenceError` is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from anesbench.errors import RetryableInferenceError

MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped.

    >>> parse_retry_after("2")
    2.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    """Backoff with jitter, or exactly the server's Retry-After when it sent one."""
    backoff = wait_exponential_jitter(initial=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableInferenceError) and error.retry_after is not None:
            return error.retry_after
        return backoff(state)

    return wait


def retrying(policy: RetryPolicy, sleep: Callable[[float], Awaitable[None]]) -> AsyncRetrying:
    """``sleep`` waits between attempts (the router's: a circuit breaker that opens cuts it short)."""
    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableInferenceError),
        stop=stop_after_attempt(policy.max_attempts),
        wait=_wait(policy),
        reraise=True,
        sleep=sleep,
    )
