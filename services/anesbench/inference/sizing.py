"""How many requests to keep in flight when the user does not say (``--concurrency`` unset).

1. Ask the server: SGLang's ``GET /get_server_info`` reports ``max_running_requests`` (its decode
   batch); llama.cpp's ``GET /props`` reports ``total_slots``. We keep that many in flight plus a
   small queue, so a slot that frees up is refilled at once without the server's queue growing long.
2. Otherwise adapt (:class:`AdaptiveLimiter`, TCP-like slow start): grow multiplicatively while
   latency stays flat, settle at the capacity Little's law gives once requests queue, cut on 429/503.
"""

from __future__ import annotations

import json

from anesbench.errors import HttpError
from anesbench.inference.endpoint import server_root
from anesbench.inference.transport import HttpOptions, HttpPool
from anesbench.limiter import DynamicLimiter, SlowStart, headroom

__all__ = ["MAX_LIMIT", "START_LIMIT", "AdaptiveLimiter", "headroom", "server_slots"]

PROBE_TIMEOUT = 5.0
START_LIMIT = 64  # doubles (or quadruples) per round trip while latency stays flat
MAX_LIMIT = 1024


async def server_slots(endpoint: str, api_key: str | None = None, options: HttpOptions | None = None) -> int | None:
    """The server's own count of parallel slots (SGLang's ``max_running_requests`` times ``dp_size``, else
    llama.cpp's ``total_slots``), or None when it does not say."""
    async with HttpPool(server_root(endpoint), timeout=PROBE_TIMEOUT, api_key=api_key, options=options) as http:
        if (slots := _sglang_slots(await get_json(http, "/get_server_info"))) is not None:
            return slots
        props = await get_json(http, "/props")  # llama.cpp
        return _positive(props.get("total_slots")) if isinstance(props, dict) else None


async def get_json(http: HttpPool, path: str) -> object:
    """The JSON body of ``GET path``; None when the server has no such page or it is not JSON."""
    try:
        response = await http.request("GET", path)
        return json.loads(response.body) if response.status == 200 else None
    except (HttpError, TimeoutError, ValueError):
        return None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _sglang_slots(info: object) -> int | None:
    if not isinstance(info, dict):
        return None
    slots = info.get("max_running_requests")
    if slots is None and isinstance(info.get("internal_states"), list) and info["internal_states"]:
        first = info["internal_states"][0]
        slots = first.get("max_running_requests") if isinstance(first, dict) else None  # newer SGLang layouts
    found = _positive(slots)
    return None if found is None else found * (_positive(info.get("dp_size")) or 1)


class AdaptiveLimiter(DynamicLimiter):
    """A :class:`DynamicLimiter` sized by :class:`~anesbench.limiter.SlowStart` from what the router observes."""

    def __init__(self, start: int = START_LIMIT, maximum: int = MAX_LIMIT) -> None:
        super().__init__(start)
        self.policy = SlowStart(start, maximum)

    @property
    def maximum(self) -> int:
        return self.policy.maximum

    def observe(self, latency: float, inflight: int | None = None) -> None:
        if (changed := self.policy.observe(latency, self.limit if inflight is None else inflight)) is not None:
            self.set_limit(changed)

    def overloaded(self) -> None:
        if (changed := self.policy.overloaded()) is not None:
            self.set_limit(changed)
