"""How many requests to keep in flight when the user does not say (``--concurrency`` unset).

1. Ask the server: SGLang's ``GET /get_server_info`` reports ``max_running_requests`` (its decode
   batch); llama.cpp's ``GET /props`` reports ``total_slots``. We keep that many in flight plus a
   small queue, so a slot that frees up is refilled at once without the server's queue growing long.
2. Otherwise adapt (:class:`AdaptiveLimiter`): grow while latency stays near the best seen, shrink
   when it rises (the server is queueing) or the server says 429/503.
"""

from __future__ import annotations

import json
import math
import time

from anesbench.engine.limiter import DynamicLimiter
from anesbench.errors import HttpError
from anesbench.inference.http import HttpPool
from anesbench.inference.transport import HttpOptions

PROBE_TIMEOUT = 5.0
START_LIMIT = 32
MAX_LIMIT = 1024


def headroom(slots: int) -> int:
    """A short queue in front of the server's slots: enough to hide the harness's turn-around."""
    return max(8, math.ceil(slots * 0.1))


async def server_slots(endpoint: str, api_key: str | None = None, options: HttpOptions | None = None) -> int | None:
    """The server's own count of parallel slots, or None when it does not say.

    SGLang's ``GET /get_server_info`` is asked first (``max_running_requests`` times ``dp_size``), then
    llama.cpp's ``GET /props`` (``total_slots``, its ``--parallel``).
    """
    root = endpoint.rstrip("/").removesuffix("/v1")
    http = HttpPool(root, size=1, timeout=PROBE_TIMEOUT,
                    headers={"Authorization": f"Bearer {api_key}"} if api_key else None, options=options)
    try:
        slots = _sglang_slots(await _get_json(http, "/get_server_info"))
        if slots is None:
            slots = _llamacpp_slots(await _get_json(http, "/props"))
        return slots
    finally:
        await http.close()


async def _get_json(http: HttpPool, path: str) -> object:
    try:
        response = await http.request("GET", path)
        if response.status != 200:
            return None
        return json.loads(response.body)
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
    if found is None:
        return None
    return found * (_positive(info.get("dp_size")) or 1)


def _llamacpp_slots(props: object) -> int | None:
    return _positive(props.get("total_slots")) if isinstance(props, dict) else None


class AdaptiveLimiter(DynamicLimiter):
    """Gradient-style limit: ``limit * best_latency / recent_latency + queue``, doubling while uncongested.

    ``observe`` is called after every attempt with its latency and whether the server pushed back.
    """

    def __init__(self, start: int = START_LIMIT, maximum: int = MAX_LIMIT) -> None:
        super().__init__(start)
        self.maximum = maximum
        self._best = math.inf
        self._window: list[float] = []
        self._slow_start = True
        self._last_backoff = 0.0

    def observe(self, latency: float, overloaded: bool = False) -> None:
        now = time.monotonic()
        if overloaded:
            if now - self._last_backoff > 1.0:  # one cut per burst of 429s, not one per request
                self._last_backoff = now
                self._slow_start = False
                self.set_limit(max(1, int(self.limit * 0.7)))
            return
        self._best = min(self._best, latency)
        self._window.append(latency)
        if len(self._window) < max(self.limit // 2, 8):
            return
        self._window.sort()
        recent = self._window[len(self._window) // 2]
        self._window.clear()
        ratio = self._best / recent if recent > 0 else 1.0
        if self._slow_start and ratio > 0.8:
            self.set_limit(min(self.maximum, self.limit * 2))
            return
        self._slow_start = False
        target = self.limit * max(ratio, 0.5) + math.sqrt(self.limit)
        self.set_limit(min(self.maximum, max(1, int(0.8 * self.limit + 0.2 * target))))
