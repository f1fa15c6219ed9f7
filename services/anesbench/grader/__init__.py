"""Graders: turn a model reply into a predicted letter (or "no answer") and the method that decided.

* :class:`LocalGrader` — in-process, for the embedded engine.
* :class:`anesbench.grader.client.RemoteGrader` — batches calls over one gRPC stream to the grader
  service; ``MultiConnectionGrader`` spreads them over several, for the dispatcher.
* :mod:`anesbench.grader.server` — the grader service itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from anesbench.grader.local import LocalGrader
from anesbench.grading import Extraction


class Grader(Protocol):
    """What the engine needs from a grader, local or remote."""

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None) -> Extraction:
        """Grade one reply against its options ({"A": "text", ...}); never blocks the loop for long."""

    async def close(self) -> None:
        """Release connections; pending grade() calls fail with GraderUnavailable."""


__all__ = ["Grader", "LocalGrader"]
