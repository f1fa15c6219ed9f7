"""Several RemoteGraders on separate connections, so that grader replicas share the work.

One gRPC connection carries one long-lived GradeStream, and a Kubernetes Service balances
connections, not messages: with a single connection every batch would reach the same grader pod
however many replicas run. Each RemoteGrader here gets its own connection (a local subchannel
pool, so gRPC does not share one TCP connection between them), and calls are spread round-robin in runs of ``BURST``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

from anesbench import metrics
from anesbench.grader.client import RemoteGrader
from anesbench.grading import Extraction
from anesbench.serving import CLIENT_OPTIONS, ClientTls

OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
BURST = 64


class MultiConnectionGrader:
    """Satisfies :class:`anesbench.grader.Grader`."""

    def __init__(self, target: str, connections: int = 4, *, give_up_after: float = 30.0,
                 tls: ClientTls | None = None, token: str | None = None) -> None:
        self.graders = [
            RemoteGrader(target, channel_options=(*CLIENT_OPTIONS, *OWN_CONNECTION), give_up_after=give_up_after,
                         tls=tls, token=token)
            for _ in range(max(1, connections))
        ]
        self._next = itertools.cycle(self.graders)
        self._current = next(self._next)
        self._calls = 0

    def _pick(self) -> RemoteGrader:
        # Runs of BURST calls per connection rather than one each: concurrent calls then share one
        # GradeBatch message (a gRPC write costs ~0.5 ms whatever its size) and replicas still share the work.
        self._calls += 1
        if self._calls >= BURST:
            self._calls = 0
            self._current = next(self._next)
        return self._current

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None = None) -> Extraction:
        waiting = metrics.GRADE_QUEUE_DEPTH
        waiting.inc()
        try:
            return await self._pick().grade(choices, response, finish_reason)
        finally:
            waiting.dec()

    async def close(self) -> None:
        await asyncio.gather(*(grader.close() for grader in self.graders))
