"""LocalGrader: grading in-process, for the embedded engine (no grader service involved)."""

from __future__ import annotations

from collections.abc import Mapping

from anesbench.grader._limits import check_item
from anesbench.grading import Extraction, extract_answer


class LocalGrader:
    """Calls ``anesbench.grading.extract_answer`` directly; satisfies :class:`anesbench.grader.Grader`.

    >>> import asyncio
    >>> asyncio.run(LocalGrader().grade({"A": "Propofol", "B": "Ketamine"}, "The answer is B.", "stop")).pred
    'B'
    """

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None = None) -> Extraction:
        # The grader service's limits: a reply grades (or is refused as ungradable) alike in both modes.
        check_item(choices, response, finish_reason or "", "", at="reply")
        return extract_answer(choices, response, finish_reason=finish_reason)

    async def close(self) -> None:
        """Nothing to release; present so callers can treat every Grader alike."""
