"""A concurrency limit that can change while requests are in flight (fair shares, adaptive sizing)."""

from __future__ import annotations

import asyncio
from types import TracebackType


class DynamicLimiter:
    """Like a semaphore whose size can be set at any time; a lower limit takes effect as requests finish.

    >>> async def two_at_a_time() -> int:
    ...     limiter = DynamicLimiter(2)
    ...     async with limiter:
    ...         limiter.set_limit(1)
    ...     return limiter.limit
    >>> asyncio.run(two_at_a_time())
    1
    """

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._inflight = 0
        self._changed = asyncio.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def inflight(self) -> int:
        return self._inflight

    def set_limit(self, limit: int) -> None:
        self._limit = max(1, limit)
        asyncio.get_running_loop().create_task(self._notify_all())

    async def _notify_all(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def __aenter__(self) -> None:
        if self._inflight < self._limit:
            self._inflight += 1
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self._inflight < self._limit)
            self._inflight += 1

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._inflight -= 1
        async with self._changed:
            self._changed.notify()
