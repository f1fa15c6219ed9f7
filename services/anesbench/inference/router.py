"""Spread one model's requests over its endpoints, keep each one full, retry transient failures, and stop
a run whose model has gone away.

Each endpoint (an SGLang replica or data-parallel rank) has its own concurrency limit; a request
goes to the endpoint with the most free room. An endpoint that keeps failing to connect or answer
is taken out for a cooldown that doubles while it stays down, and tried again after it. Only
:class:`RetryableInferenceError` is retried, after an exponential backoff with jitter (or exactly
the server's Retry-After), and the retry may land on another endpoint.

The circuit breaker decides when there is nothing left to send to. It opens when every endpoint is
failing — its attempts since its last success all ended in a connection error, a timeout or a 5xx — and
either ``threshold`` such attempts have piled up across them or they have all been failing for
``window`` seconds (a run with few requests in flight). Once open it stays open: the run stops
sending, finishes what is in flight and fails with :meth:`CircuitBreaker.cause`; running the same
command again resumes it. 429 and 4xx do not count: the server is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from anesbench import metrics
from anesbench.errors import EndpointsUnreachable, InferenceError, RetryableInferenceError
from anesbench.inference.client import CHAT, ChatClient, Completion
from anesbench.inference.endpoint import public_endpoint
from anesbench.inference.transport import HttpOptions
from anesbench.limiter import DynamicLimiter

DOWN_AFTER = 3  # consecutive connection failures or timeouts
FIRST_COOLDOWN, MAX_COOLDOWN = 2.0, 60.0
DOWN_CAUSES = frozenset({"connection_error", "timeout"})
OUTAGE_CAUSES = DOWN_CAUSES | {"server_error"}
THRESHOLD = 20  # failed attempts in a row, over all endpoints
WINDOW = 5.0  # seconds all endpoints have been failing (with at least MIN_FAILURES attempts)
MIN_FAILURES = 3


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0

    def wait(self, error: RetryableInferenceError, attempt: int) -> float:
        """Seconds to wait after the failed ``attempt``: the server's Retry-After, else backoff with jitter."""
        if error.retry_after is not None:
            return error.retry_after
        return min(self.initial_backoff * 2 ** (attempt - 1) + random.uniform(0, 1), self.max_backoff)


@dataclass(slots=True)
class _Health:
    """One endpoint's outages since its last success: the breaker's count, and the cooldown's."""

    failures: int = 0  # attempts failed since the last success
    since: float = 0.0  # monotonic time of the first of them
    since_wall: datetime | None = None
    last: str = ""
    down: int = 0  # those of them that were connection failures or timeouts
    down_until: float = 0.0
    cooldown: float = FIRST_COOLDOWN


class CircuitBreaker:
    """The failures of every endpoint, fed by the router after every attempt; ``opened`` is set once, when
    the breaker opens."""

    def __init__(
        self, endpoints: Sequence[str], *, threshold: int = THRESHOLD, window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.health = {url: _Health() for url in endpoints}
        self._threshold, self._window = threshold, window
        self._clock, self._wall = clock, wall
        self.opened = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.opened.is_set()

    def success(self, url: str) -> None:
        if not self.open:
            self.health[url] = _Health(down_until=self.health[url].down_until)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def failure(self, url: str, cause: str, message: str) -> None:
        """An attempt to ``url`` failed with ``cause`` (the RetryableInferenceError's); counts only outages."""
        if self.open or cause not in OUTAGE_CAUSES:
            return
        state = self.health[url]
        if state.failures == 0:
            state.since, state.since_wall = self._clock(), self._wall()
        state.failures += 1
        state.last = message
        if cause in DOWN_CAUSES:
            state.down += 1
            if state.down >= DOWN_AFTER:
                state.down_until = self._clock() + state.cooldown
                state.cooldown = min(state.cooldown * 2, MAX_COOLDOWN)
        self._check()

    def _check(self) -> None:
        states = self.health.values()
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
        for url, state in self.health.items():
            when = f"{state.since_wall:%H:%M:%S}" if state.since_wall else "the start"
            parts.append(f"endpoint {public_endpoint(url)} unreachable since {when}: {state.last or 'no answer'}")
        return "; ".join(parts)


class EndpointRouter:
    """``complete`` is what the engine calls; the router owns the per-endpoint clients."""

    def __init__(
        self,
        endpoints: Sequence[str],
        model: str,
        limiters: Sequence[DynamicLimiter],
        *,
        api_key: str | None = None,
        request_timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        http: HttpOptions | None = None,
        path: str = CHAT,
    ) -> None:
        self._retry = retry or RetryPolicy()
        self.endpoints = [ChatClient(url, model, limiter, api_key=api_key, request_timeout=request_timeout,
                                     options=http, path=path) for url, limiter in zip(endpoints, limiters, strict=True)]
        self.breaker = CircuitBreaker([endpoint.endpoint for endpoint in self.endpoints])
        self._retries = {cause: metrics.INFERENCE_RETRIES.labels(model, cause)
                         for cause in ("rate_limited", "server_error", "timeout", "connection_error", "bad_payload")}

    @property
    def limit(self) -> int:
        return sum(endpoint.limiter.limit for endpoint in self.endpoints)

    async def __aenter__(self) -> EndpointRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(endpoint.close() for endpoint in self.endpoints))

    def _pick(self) -> ChatClient:
        now = time.monotonic()
        down_until = {endpoint: self.breaker.health[endpoint.endpoint].down_until for endpoint in self.endpoints}
        up = [endpoint for endpoint, until in down_until.items() if until <= now]
        if not up:  # all down: try the one that comes back first rather than failing the item
            return min(down_until, key=down_until.__getitem__)
        return max(up, key=lambda endpoint: endpoint.limiter.limit - endpoint.limiter.inflight)  # the most free room

    async def _sleep(self, seconds: float) -> None:
        """The wait between attempts; cut short (and the request given up) when the breaker opens."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.breaker.opened.wait(), seconds)
        if self.breaker.open:
            raise EndpointsUnreachable(self.breaker.cause())

    async def _once(self, payload: bytes, n: int) -> Completion:
        if self.breaker.open:
            raise EndpointsUnreachable(self.breaker.cause())
        endpoint = self._pick()
        async with endpoint.limiter.slots(n):  # a request for n choices takes n of the server's slots
            inflight = endpoint.limiter.inflight  # this request included: what the server saw it arrive with
            try:
                completion = await endpoint.attempt(payload, n)
            except RetryableInferenceError as error:
                endpoint.record(error, None, inflight)
                self.breaker.failure(endpoint.endpoint, error.cause, str(error))
                if self.breaker.open:
                    raise EndpointsUnreachable(self.breaker.cause()) from None
                raise
        endpoint.record(None, completion.latency, inflight)
        self.breaker.success(endpoint.endpoint)
        return completion

    async def complete(self, payload: bytes, n: int = 1) -> Completion:
        """Send one request (a body asking for ``n`` choices), retrying transient failures on any endpoint;
        :class:`EndpointsUnreachable` (the run must stop) once the circuit breaker is open."""
        attempts = 1
        while True:
            try:
                completion = await self._once(payload, n)
            except InferenceError as error:
                if not isinstance(error, RetryableInferenceError) or attempts >= self._retry.max_attempts:
                    error.attempts = attempts
                    raise
                await self._sleep(self._retry.wait(error, attempts))
                attempts += 1
                self._retries[error.cause].inc()
                continue
            completion.attempts = attempts
            return completion
