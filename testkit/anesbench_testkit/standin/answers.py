"""How the stand-in picks an answer: parse the options from the prompt, look up the key if known.

With a dataset, the stand-in answers correctly with a per-level probability, so the leaderboard
it produces looks like a model's; without one it picks a letter. The choice is a pure function of
the request, so a re-sent request gets the same reply (resume tests compare leaderboards).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

OPTION_LINE = re.compile(r"^\s*([A-H])[.．、:：)]\s*(.+?)\s*$", re.MULTILINE)
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True, slots=True)
class KnownAnswer:
    answer: str
    level: int


def parse_options(prompt: str) -> dict[str, str]:
    """The lettered options of the question in ``prompt`` (the last run of A., B., … lines)."""
    options: dict[str, str] = {}
    for letter, text in OPTION_LINE.findall(prompt):
        if letter == "A":
            options = {}
        options[letter] = text
    return options


def prompt_language(prompt: str) -> str:
    return "zh" if CJK.search(prompt) else "en"


class AnswerKey:
    """Answers by option texts, read from an AnesBench JSON Lines or JSON file."""

    def __init__(self, records: Iterable[dict[str, object]] = ()) -> None:
        self._key: dict[tuple[str, ...], KnownAnswer] = {}
        for record in records:
            choice_num = int(record.get("choice_num", 0))  # type: ignore[call-overload]
            letters = "ABCDEFGH"[:choice_num]
            known = KnownAnswer(str(record.get("answer")), int(record.get("level", 1)))  # type: ignore[call-overload]
            for prefix in ("en", "zh", "cn"):
                texts = tuple(str(record.get(f"{prefix}_{letter}", "")).strip() for letter in letters)
                if all(texts):
                    self._key[texts] = known

    @classmethod
    def from_file(cls, path: str | Path) -> AnswerKey:
        text = Path(path).read_text(encoding="utf-8")
        records = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
        return cls(records)

    def lookup(self, options: dict[str, str]) -> KnownAnswer | None:
        return self._key.get(tuple(options.values()))


def choose_letter(
    options: dict[str, str], known: KnownAnswer | None, accuracy: dict[int, float], rng: random.Random
) -> str:
    letters = list(options)
    if known is not None and known.answer in options:
        if rng.random() < accuracy.get(known.level, 0.6):
            return known.answer
        wrong = [letter for letter in letters if letter != known.answer]
        return rng.choice(wrong or letters)
    return rng.choice(letters)
