"""What a grader does (:class:`Grader`) and accepts, and LocalGrader: grading in-process, for the embedded engine.

The limits are shared by LocalGrader (a reply grades, or is refused as ungradable, alike in both
modes), the servicer and RemoteGrader, which checks before sending so that one bad reply fails alone
instead of failing a whole shared stream. Messages name where the problem is and which field, e.g.::

    batch 2, items[17] (id '3f'): choices: key 'I' is not a single letter A-H
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from anesbench.dataset.model import LETTERS
from anesbench.errors import InvalidInput
from anesbench.grading import Extraction, extract_answer

MAX_BATCH_ITEMS = 4096
MAX_RESPONSE_BYTES = 1 << 20  # 1 MiB: far above any 2048-token answer, far below the message limit
MAX_CHOICE_BYTES = 64 << 10  # one option's text; AnesBench options are a few dozen words
MAX_ID_BYTES = 256
MAX_FINISH_REASON_BYTES = 64
CHOICE_KEYS = frozenset(LETTERS)  # not LETTERS itself: "AB" in "ABCDEFGH"


def where(index: int | None, item_id: str, *, batch: int | None = None) -> str:
    """An item's position for error messages: ``batch 2, items[17] (id '3f')``."""
    label = ("" if batch is None else f"batch {batch}, ") + ("request" if index is None else f"items[{index}]")
    return f"{label} (id {_show(item_id)})" if item_id else label


def check_batch_size(count: int, batch: int) -> None:
    if count > MAX_BATCH_ITEMS:
        raise InvalidInput(f"batch {batch}: items: {count} items, more than the limit of {MAX_BATCH_ITEMS}")


def check_item(choices: Mapping[str, str], response: str, finish_reason: str, item_id: str, *, at: str) -> None:
    _check_size(at, "id", item_id, MAX_ID_BYTES)
    if not choices:
        raise InvalidInput(f"{at}: choices: must not be empty")
    for key, text in choices.items():
        if key not in CHOICE_KEYS:
            raise InvalidInput(f"{at}: choices: key {_show(key)} is not a single letter A-H")
        _check_size(at, f"choices[{key}]", text, MAX_CHOICE_BYTES)
    _check_size(at, "response", response, MAX_RESPONSE_BYTES, " (1 MiB)")
    _check_size(at, "finish_reason", finish_reason, MAX_FINISH_REASON_BYTES)


def _check_size(at: str, field: str, text: str, limit: int, unit: str = "") -> None:
    # Limits are in bytes because that is what travels and what the message-size limit counts.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidInput(f"{at}: {field}: {size} bytes, more than the limit of {limit}{unit}")


def _show(text: str, limit: int = 40) -> str:
    """repr() of a client-supplied string, cut short: it goes into a status trailer of bounded size."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


class Grader(Protocol):
    """What the engine needs from a grader, local or remote."""

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None) -> Extraction:
        """Grade one reply against its options ({"A": "text", ...}); never blocks the loop for long."""

    async def close(self) -> None:
        """Release connections; pending grade() calls fail with GraderUnavailable."""


class LocalGrader:
    """Calls ``anesbench.grading.extract_answer`` directly; satisfies :class:`anesbench.grader.Grader`.

    >>> import asyncio
    >>> asyncio.run(LocalGrader().grade({"A": "Propofol", "B": "Ketamine"}, "The answer is B.", "stop")).pred
    'B'
    """

    async def grade(self, choices: Mapping[str, str], response: str, finish_reason: str | None = None) -> Extraction:
        check_item(choices, response, finish_reason or "", "", at="reply")
        return extract_answer(choices, response, finish_reason=finish_reason)

    async def close(self) -> None:
        """Nothing to release; present so callers can treat every Grader alike."""
