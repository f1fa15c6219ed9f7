"""A circuit breaker over all the endpoints of one model: stop a run whose model has gone away.

The router already takes a failing replica out for a while and sends to the others; this decides
when there is nothing left to send to. It opens when every endpoint is failing — its attempts
since its last success all ended in a connection error, a timeout or a 5xx — and either
``threshold`` such attempts have piled up across them or they have all been failing for
``window`` seconds (a run with few requests in flight). Once open it stays open: the run stops
sending, finishes what is in flight and fails with :meth:`cause`; running the same command again
resumes it. 429 and 4xx do not count: the server is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from anesbench.inference.endpoint import public_endpoint

THRESHOLD = 20  # failed attempts in a row, over all endpoints
WINDOW = 5.0  # seconds all endpoints have been failing (with at least MIN_FAILURES attempts)
MIN_FAILURES = 3
OUTAGE_CAUSES = frozenset({"connection_error", "server_error", "timeout"})


@dataclass(slots=True)
class _State:
    failures: int = 0  # attempts failed since the last success
    since: float = 0.0  # monotonic time of the first of them
    since_wall: datetime | None = None
    last: str = ""


class CircuitBreaker:
    """Fed by the router after every attempt; ``opened`` is set once, when the breaker opens."""

    def __init__(
        self, endpoints: Sequence[str], *, threshold: int = THRESHOLD, window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._states = {url: _State() for url in endpoints}
        self._threshold, self._window = threshold, window
        self._clock, self._wall = clock, wall
        self.opened = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.opened.is_set()

    def success(self, url: str) -> None:
        if not self.open:
            self._states[url] = _State()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def failure(self, url: str, cause: str, message: str) -> None:
        """An attempt to ``url`` failed with ``cause`` (the RetryableInferenceError's); counts only outages."""
        if self.open or cause not in OUTAGE_CAUSES:
            return
        state = self._states[url]
        if state.failures == 0:
            state.since, state.since_wall = self._clock(), self._wall()
        state.failures += 1
        state.last = message
        self._check()

    def _check(self) -> None:
        states = self._states.values()
        if any(state.failures == 0 for state in states):
            return  # some endpoint has answered since it last failed (or was not tried yet)
        total = sum(state.failures for state in states)
        all_failing_for = self._clock() - max(state.since for state in states)
        if total >= self._threshold or (total >= MIN_FAILURES and all_failing_for >= self._window):
            self.opened.set()
        elif self._timer is None and all_failing_for < self._window:
            # Look again when the window is over, even if no attempt ends then (they may all be in backoff).
            with contextlib.suppress(RuntimeError):  # no running loop (a synchronous caller): the next failure
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self._window - all_failing_for + 0.01, self._recheck)

    def _recheck(self) -> None:
        self._timer = None
        if not self.open:
            self._check()

    def cause(self) -> str:
        """``endpoint http://… unreachable since 12:03:41: connection failed: …`` (one clause per endpoint)."""
        parts = []
        for url, state in self._states.items():
            when = f"{state.since_wall:%H:%M:%S}" if state.since_wall else "the start"
            parts.append(f"endpoint {public_endpoint(url)} unreachable since {when}: {state.last or 'no answer'}")
        return "; ".join(parts)
