"""How many requests a dispatcher run may keep in flight, and its fair share of the endpoint.

A run that gives its concurrency gets that. Otherwise each endpoint that reports its slots
(:func:`anesbench.inference.sizing.server_slots`) counts those slots plus a short queue; one that
does not counts ``unknown_slots`` when the caller gives it (the run is then fixed at the sum), else
:data:`MAX_LIMIT` with the engine's adaptive limiter sizing the run and the fair share only capping
it. Runs on one endpoint then share it (:class:`EndpointShares`) from join to leave.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

from anesbench.dispatcher.settings import DispatcherSettings
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


class RunSizing:
    def __init__(self, settings: DispatcherSettings) -> None:
        self._settings = settings
        self._shares = EndpointShares()

    async def join(
        self, run_id: str, config: RunConfig, *, unknown_slots: int | None = None
    ) -> tuple[RunConfig, DynamicLimiter]:
        """The run's config with its concurrency settled, and its share of the endpoint (until :meth:`leave`)."""
        wanted = config.concurrency
        sized = config
        if wanted is None:
            unknown = MAX_LIMIT if unknown_slots is None else unknown_slots
            found = await asyncio.gather(*(server_slots(url, self._settings.key_for(config.endpoints))
                                           for url in config.endpoints))
            wanted = sum(n + headroom(n) if n else unknown for n in found)
            if unknown_slots is not None or all(found):
                sized = dataclasses.replace(config, concurrency=wanted)
        return sized, self._shares.join(config.endpoint, run_id, wanted)

    def leave(self, run_id: str, config: RunConfig) -> None:
        self._shares.leave(config.endpoint, run_id)
