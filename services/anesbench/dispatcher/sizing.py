"""How many requests a dispatcher run may keep in flight, and its fair share of the endpoint.

A run that gives its concurrency gets that. Otherwise each endpoint that reports its slots
(:func:`anesbench.inference.sizing.server_slots`) counts those slots plus a short queue; one that
does not counts ``unknown_slots`` when the caller gives it (the run is then fixed at the sum), else
:data:`MAX_LIMIT` with the engine's adaptive limiter sizing the run and the fair share only capping
it (:func:`settle`). Runs on one endpoint then share it (:class:`EndpointShares`) from join to leave.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

from anesbench.engine.config import RunConfig
from anesbench.inference.sizing import MAX_LIMIT, headroom, server_slots
from anesbench.limiter import DynamicLimiter


class EndpointShares:
    """Each endpoint has a capacity (the largest concurrency any of its runs asked for); n runs get 1/n each."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, tuple[DynamicLimiter, int]]] = defaultdict(dict)

    def join(self, endpoint: str, run_id: str, concurrency: int) -> DynamicLimiter:
        limiter = DynamicLimiter(concurrency)
        self._runs[endpoint][run_id] = (limiter, concurrency)
        self._rebalance(endpoint)
        return limiter

    def leave(self, endpoint: str, run_id: str) -> None:
        self._runs[endpoint].pop(run_id, None)
        if self._runs[endpoint]:
            self._rebalance(endpoint)
        else:
            del self._runs[endpoint]

    def _rebalance(self, endpoint: str) -> None:
        # Water-filling: runs that want less than an equal share keep what they want, the rest is split.
        runs = sorted(self._runs[endpoint].values(), key=lambda entry: entry[1])
        remaining = max(wanted for _, wanted in runs)
        for index, (limiter, wanted) in enumerate(runs):
            share = max(1, min(wanted, remaining // (len(runs) - index)))
            limiter.set_limit(share)
            remaining = max(remaining - share, 0)


async def settle(config: RunConfig, api_key: str | None, *, unknown_slots: int | None = None) -> tuple[RunConfig, int]:
    """The run's config with its concurrency settled (unless the adaptive limiter sizes it), and the
    concurrency it wants of its endpoint's share."""
    if config.concurrency is not None:
        return config, config.concurrency
    found = await asyncio.gather(*(server_slots(url, api_key) for url in config.endpoints))
    unknown = MAX_LIMIT if unknown_slots is None else unknown_slots
    wanted = sum(n + headroom(n) if n else unknown for n in found)
    if unknown_slots is not None or all(found):
        return dataclasses.replace(config, concurrency=wanted), wanted
    return config, wanted
