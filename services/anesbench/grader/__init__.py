"""Graders: turn a model reply into a predicted letter (or "no answer") and the method that decided.

* :class:`LocalGrader` — in-process, for the embedded engine.
* :class:`anesbench.grader.client.RemoteGrader` — batches calls over one gRPC stream to the grader
  service; ``MultiConnectionGrader`` spreads them over several, for the dispatcher.
* :mod:`anesbench.grader.server` — the grader service itself.
"""

from anesbench.grader.local import Grader, LocalGrader

__all__ = ["Grader", "LocalGrader"]
