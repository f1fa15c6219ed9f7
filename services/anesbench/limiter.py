"""Concurrency limits that can change while requests are in flight (fair shares, adaptive sizing).

Below both `engine` and `inference`, which use it; it imports nothing of ours.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import deque


class DynamicLimiter:
    """Like a semaphore whose size can be set at any time; a lower limit takes effect as requests finish.

    Waiters are served first come, first served; places are handed to a waiter directly on release
    (no lock, no condition variable: this is on every request's path, twice through the dispatcher).

    >>> async def two_at_a_time() -> int:
    ...     limiter = DynamicLimiter(2)
    ...     async with limiter.slots():
    ...         limiter.set_limit(1)
    ...     return limiter.limit
    >>> asyncio.run(two_at_a_time())
    1
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)  # set with set_limit, which wakes the waiters that now fit
        self.inflight = 0
        self._waiters: deque[tuple[asyncio.Future[None], int]] = deque()

    @property
    def maximum(self) -> int:
        """The most places this limiter may allow: what a connection pool in front of it needs. A fixed
        limiter's is its limit; an adaptive one's is the ceiling it may grow to."""
        return self.limit

    def observe(self, latency: float, inflight: int | None = None) -> None:
        """One request completed after ``latency`` seconds, sent with ``inflight`` in flight (``None``:
        the limit). An adaptive limiter sizes itself from these; a fixed one ignores them."""

    def overloaded(self) -> None:
        """The server pushed back (429/503). An adaptive limiter backs off; a fixed one ignores it."""

    def set_limit(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._wake()

    def _fits(self, weight: int) -> bool:
        # A request heavier than the whole limit still goes, alone.
        return self.inflight + weight <= self.limit or self.inflight == 0

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and (waiters[0][0].done() or self._fits(waiters[0][1])):
            future, weight = waiters.popleft()
            if not future.done():  # else it was cancelled while waiting
                self.inflight += weight
                future.set_result(None)

    async def acquire(self, weight: int = 1) -> None:
        """Take ``weight`` places (a request for n choices takes n)."""
        if not self._waiters and self._fits(weight):
            self.inflight += weight
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((future, weight))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # the places were handed over just before
                self.release(weight)
            raise

    def release(self, weight: int = 1) -> None:
        self.inflight -= weight
        self._wake()

    def slots(self, weight: int = 1) -> _Held:
        """``async with limiter.slots(n):`` holds n places."""
        return _Held(self, weight)


class _Held:
    # a plain class, not contextlib.asynccontextmanager: a third of the cost on every request's path
    __slots__ = ("_limiter", "_weight")

    def __init__(self, limiter: DynamicLimiter, weight: int) -> None:
        self._limiter, self._weight = limiter, weight

    async def __aenter__(self) -> None:
        await self._limiter.acquire(self._weight)

    async def __aexit__(self, *exc: object) -> None:
        self._limiter.release(self._weight)


def headroom(slots: float) -> int:
    """A short queue in front of a server's slots: enough to hide the harness's turn-around."""
    return max(8, math.ceil(slots * 0.1))


class SlowStart:
    """Find a server's capacity from latency alone, like TCP's slow start (a pure policy: no clock, no I/O).

    Observations are grouped in windows of completed requests; each carries its latency and how
    many requests were in flight when it was sent. ``base`` is the lowest 10th percentile of a
    window seen: the latency without queueing. While a window's stays within ``QUEUEING`` of it, the limit
    doubles relative to the concurrency that window was sent at (so it doubles once per round
    trip, whatever the window size). Once the median rises, the server is queueing: by Little's
    law its slots are about ``concurrency ÷ (latency ÷ base)``, and the limit becomes that plus a
    short queue (:func:`headroom`). Afterwards the limit follows the same estimate and probes
    upwards gently while latency stays flat. A 429/503 cuts the limit by 30 %, once per round trip.
    """

    QUEUEING = 1.2  # a window median this much above the base means requests wait for a slot
    FLAT = 1.05  # below this, nothing queues: probe for more capacity
    BACKOFF = 0.7
    MIN_WINDOW = 16

    def __init__(self, start: int, maximum: int) -> None:
        self.limit = max(1, min(start, maximum))
        self.maximum = maximum
        self.base = math.inf
        self.slow_start = True
        self.estimate: float | None = None  # the server's slots, once queueing was seen
        self._window: list[tuple[float, int]] = []  # each completed request's latency and in flight when sent
        self._hold_overload = 0

    def _set(self, limit: float) -> int:
        self.limit = max(1, min(self.maximum, round(limit)))
        return self.limit

    def overloaded(self) -> int | None:
        """The server said 429/503: cut the limit, at most once per round trip of observations."""
        if self._hold_overload > 0:
            return None
        self.slow_start = False
        self._hold_overload = self.limit
        self._window.clear()
        return self._set(self.limit * self.BACKOFF)

    def observe(self, latency: float, inflight: int) -> int | None:
        """One completed request; returns the new limit when it changes."""
        self._hold_overload -= 1
        self._window.append((latency, inflight))
        # The first window is the whole first burst: its first quarter to finish is the fastest quarter.
        if len(self._window) < (self.limit if self.base == math.inf else max(self.MIN_WINDOW, self.limit // 4)):
            return None
        latencies, inflights = zip(*self._window, strict=True)
        self._window.clear()
        # The 10th percentile: queueing shifts it like the median, but even a burst that starts above the
        # server's capacity has its first tenth served without waiting, so the unqueued latency is seen.
        recent = sorted(latencies)[len(latencies) // 10]
        self.base = min(self.base, recent)
        ratio = recent / self.base if self.base > 0 else 1.0
        concurrency = max(inflights)  # the level this window was sent at
        slots = statistics.median(inflights) / ratio  # Little's law: in flight ÷ (latency ÷ unqueued)
        before = self.limit
        if ratio <= (self.QUEUEING if self.slow_start else self.FLAT):
            if self.slow_start:
                self._set(max(self.limit, (4 if ratio <= self.FLAT else 2) * concurrency))
            elif concurrency >= 0.9 * self.limit:  # only probe when the limit is what holds us back
                self._set(self.limit + max(1.0, concurrency / 16))
        else:
            self.slow_start = False
            self.estimate = slots
            target = self.estimate + headroom(self.estimate)
            self._set(target if self.limit > target * 1.5 else (self.limit + target) / 2)
        return self.limit if self.limit != before else None
