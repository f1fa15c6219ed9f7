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

from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.dispatcher.shares import EndpointShares
from anesbench.engine.config import RunConfig
from anesbench.inference.sizing import MAX_LIMIT, headroom, server_slots
from anesbench.limiter import DynamicLimiter


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
