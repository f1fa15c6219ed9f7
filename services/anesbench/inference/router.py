"""Spread one model's requests over its endpoints, keep each one full, and retry transient failures.

Each endpoint (an SGLang replica or data-parallel rank) has its own concurrency limit; a request
goes to the endpoint with the most free room. An endpoint that keeps failing to connect or answer
is taken out for a cooldown that doubles while it stays down, and tried again after it. Only
:class:`RetryableInferenceError` is retried, after an exponential backoff with jitter (or exactly
the server's Retry-After), and the retry may land on another endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from anesbench import metrics
from anesbench.errors import EndpointsUnreachable, InferenceError, RetryableInferenceError
from anesbench.inference.breaker import CircuitBreaker
from anesbench.inference.client import CHAT, ChatClient, Completion
from anesbench.inference.transport import HttpOptions
from anesbench.limiter import DynamicLimiter

DOWN_AFTER = 3  # consecutive connection failures or timeouts
FIRST_COOLDOWN, MAX_COOLDOWN = 2.0, 60.0
OVERLOAD_CAUSES = {"rate_limited", "server_error"}
DOWN_CAUSES = {"connection_error", "timeout"}


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
class Endpoint:
    client: ChatClient
    limiter: DynamicLimiter
    failures: int = 0
    down_until: float = 0.0
    cooldown: float = FIRST_COOLDOWN

    def free(self) -> int:
        return self.limiter.limit - self.limiter.inflight

    def record(self, error: RetryableInferenceError | None, latency: float | None, inflight: int) -> None:
        if error is None and latency is not None:
            self.limiter.observe(latency, inflight)
        elif error is not None and error.cause in OVERLOAD_CAUSES:
            self.limiter.overloaded()
        if error is None:
            self.failures, self.cooldown = 0, FIRST_COOLDOWN
        elif error.cause in DOWN_CAUSES:
            self.failures += 1
            if self.failures >= DOWN_AFTER:
                self.down_until = time.monotonic() + self.cooldown
                self.cooldown = min(self.cooldown * 2, MAX_COOLDOWN)


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
        self.endpoints = [
            Endpoint(ChatClient(url, model, api_key=api_key, pool_size=limiter.maximum,
                                request_timeout=request_timeout, options=http, path=path), limiter)
            for url, limiter in zip(endpoints, limiters, strict=True)
        ]
        self.breaker = CircuitBreaker([endpoint.client.endpoint for endpoint in self.endpoints])
        self._retries = {cause: metrics.INFERENCE_RETRIES.labels(model, cause)
                         for cause in ("rate_limited", "server_error", "timeout", "connection_error", "bad_payload")}

    @property
    def limit(self) -> int:
        return sum(endpoint.limiter.limit for endpoint in self.endpoints)

    async def __aenter__(self) -> EndpointRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(endpoint.client.close() for endpoint in self.endpoints))

    def _pick(self) -> Endpoint:
        now = time.monotonic()
        up = [endpoint for endpoint in self.endpoints if endpoint.down_until <= now]
        if not up:  # all down: try the one that comes back first rather than failing the item
            return min(self.endpoints, key=lambda endpoint: endpoint.down_until)
        return max(up, key=Endpoint.free)

    def _unreachable(self) -> EndpointsUnreachable:
        return EndpointsUnreachable(self.breaker.cause())

    async def _sleep(self, seconds: float) -> None:
        """The wait between attempts; cut short (and the request given up) when the breaker opens."""
        opened = self.breaker.opened
        if not opened.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(opened.wait(), seconds)
        if opened.is_set():
            raise self._unreachable()

    async def _once(self, payload: bytes, n: int) -> Completion:
        if self.breaker.open:
            raise self._unreachable()
        endpoint = self._pick()
        async with endpoint.limiter.slots(n):  # a request for n choices takes n of the server's slots
            inflight = endpoint.limiter.inflight  # this request included: what the server saw it arrive with
            try:
                completion = await endpoint.client.attempt(payload, n)
            except RetryableInferenceError as error:
                endpoint.record(error, None, inflight)
                self.breaker.failure(endpoint.client.endpoint, error.cause, str(error))
                if self.breaker.open:
                    raise self._unreachable() from None
                raise
        endpoint.record(None, completion.latency, inflight)
        self.breaker.success(endpoint.client.endpoint)
        return completion

    async def complete(self, payload: bytes, n: int = 1) -> Completion:
        """Send one request (a body asking for ``n`` choices), retrying transient failures on any endpoint;
        :class:`EndpointsUnreachable` (the run must stop) once the circuit breaker is open."""
        attempts = 1
        while True:
            try:
                completion = await self._once(payload, n)
            except RetryableInferenceError as error:
                if attempts >= self._retry.max_attempts:
                    error.attempts = attempts
                    raise
                await self._sleep(self._retry.wait(error, attempts))
                attempts += 1
                self._retries[error.cause].inc()
                continue
            except InferenceError as error:
                error.attempts = attempts
                raise
            completion.attempts = attempts
            return completion
