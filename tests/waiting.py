"""Wait for a condition, never for a length of time: poll until it holds, fail loudly at a deadline.

Tests synchronise on what happened (an event, a counter, a line printed), not on a sleep that is
long enough on a quiet machine. The deadlines are generous because the machine that runs the tests
may be loaded; a test that meets its condition early does not wait for the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 30.0  # seconds; a condition that holds at all holds long before this


def wait_until(condition: Callable[[], T], what: str, *, timeout: float = DEADLINE, interval: float = 0.02) -> T:
    """Poll ``condition`` (from a thread or a sync test) until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last value: {value!r})")
        time.sleep(interval)


async def eventually(condition: Callable[[], T], what: str, *, timeout: float = DEADLINE,
                     interval: float = 0.005) -> T:
    """Like :func:`wait_until` inside an event loop: the loop keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last value: {value!r})")
        await asyncio.sleep(interval)


async def wait_event(event: asyncio.Event, what: str, *, timeout: float = DEADLINE) -> None:
    """Wait for ``event`` to be set; fail with ``what`` at the deadline instead of hanging the test."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:g} s: {what}") from None
