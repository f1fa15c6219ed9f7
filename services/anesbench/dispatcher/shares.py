"""Fair shares of an endpoint's concurrency between the runs that use it at the same time."""

from __future__ import annotations

from collections import defaultdict

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
