"""Async access to a :class:`Store`: every call runs on one dedicated thread, never on the event loop.

DuckDB connections are not thread-safe, so one worker thread owns the connection and every call of
a :class:`Store` method goes through it: ``await store.call(Store.get_run, run_id)``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from anesbench.store.database import Store

Params = ParamSpec("Params")
Result = TypeVar("Result")


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self._sync = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")

    async def call(
        self, method: Callable[Concatenate[Store, Params], Result], *args: Params.args, **kwargs: Params.kwargs,
    ) -> Result:
        """``method`` of this store, on the store's thread. It is looked up by name on the instance, so a
        subclass of :class:`Store` gets its own override called."""
        bound: Callable[Params, Result] = getattr(self._sync, method.__name__)
        return await asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(bound, *args, **kwargs))

    async def close(self) -> None:
        await self.call(Store.close)
        self._thread.shutdown(wait=True)
