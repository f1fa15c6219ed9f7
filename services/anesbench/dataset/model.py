"""The AnesBench item, as loaded and validated.

A raw record looks like (``cn_`` is accepted for ``zh_``)::

    {"id": "1bb76e22-…", "choice_num": 4, "answer": "A", "level": 1,
     "en_question": "…", "en_A": "…", …, "zh_question": "…", "zh_A": "…", …}
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES: tuple[str, ...] = ("en", "zh")
LEVEL_NAMES: dict[int, str] = {1: "system1", 2: "system1.x", 3: "system2"}
LETTERS = "ABCDEFGH"
MIN_CHOICES, MAX_CHOICES = 2, len(LETTERS)


@dataclass(frozen=True, slots=True)
class LocalizedQuestion:
    """The stem and lettered options in one language."""

    question: str
    options: dict[str, str]


@dataclass(frozen=True, slots=True)
class Item:
    """One multiple-choice question with its texts per language."""

    id: str
    choice_num: int
    answer: str
    level: int
    texts: dict[str, LocalizedQuestion]
