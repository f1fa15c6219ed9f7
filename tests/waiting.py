"""Wait for a condition, never for a length of time: poll until it holds, fail loudly at a deadline.

Tests synchronise on what happened (an event, a counter, a line printed), not on a sleep that is
long enough on a quiet machine. The deadlines are generous because the machine that runs the tests
may be loaded; a test that meets its condition early does not wait for the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

DEADLINE = 30.0  # seconds; a condition that holds at all holds long before this


class _Poll(Generic[T]):
    """One condition checked until it holds; ``check()`` raises once the deadline has passed."""

    def __init__(self, condition: Callable[[], T], what: str, timeout: float) -> None:
        self.condition, self.what, self.timeout = condition, what, timeout
        self.deadline = time.monotonic() + timeout

    def check(self) -> T | None:
        """The condition's value when it holds (is truthy), else None."""
        value = self.condition()
        if value:
            return value
        if time.monotonic() >= self.deadline:
            raise AssertionError(f"not within {self.timeout:g} s: {self.what} (last value: {value!r})")
        return None


def wait_until(condition: Callable[[], T], what: str, *, timeout: float = DEADLINE, interval: float = 0.02) -> T:
    """Poll ``condition`` (from a thread or a sync test) until it returns a truthy value; return that value."""
    poll = _Poll(condition, what, timeout)
    while (value := poll.check()) is None:
        time.sleep(interval)
    return value


async def eventually(condition: Callable[[], T], what: str, *, timeout: float = DEADLINE,
                     interval: float = 0.005) -> T:
    """Like :func:`wait_until` inside an event loop: the loop keeps running while we wait."""
    poll = _Poll(condition, what, timeout)
    while (value := poll.check()) is None:
        await asyncio.sleep(interval)
    return value


async def wait_event(event: asyncio.Event, what: str, *, timeout: float = DEADLINE) -> None:
    """Wait for ``event`` to be set; fail with ``what`` at the deadline instead of hanging the test."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:g} s: {what}") from None
