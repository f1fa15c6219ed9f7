"""Labelled reply corpora: read them, grade every reply, and count how the grader did.

A corpus is JSON Lines, one reply a line: ``id``, ``lang`` ("en", "zh", "mixed"), ``tags``
(the reply's families), ``choices``, ``response``, ``finish_reason`` ("stop" or "length") and
``expected`` (the letter a careful reader says the reply committed to, or null for "no answer");
an optional ``source`` says where a real reply came from (template, model, tokens). The tests
and ``scripts/grader_report.py`` share this module; the grader itself never reads a corpus.

>>> outcome("B", "B"), outcome(None, "B"), outcome("B", None), outcome("B", "C")
('ok', 'false_answer', 'missed', 'wrong_letter')
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import anesbench.grading
from anesbench.errors import InvalidInput
from anesbench.grading import Extraction, extract_answer

REQUIRED_FIELDS = frozenset({"id", "lang", "tags", "choices", "response", "finish_reason", "expected"})
OPTIONAL_FIELDS = frozenset({"source"})
LANGS = ("en", "zh", "mixed")
LETTERS = "ABCDEFGH"
#: the least accuracy each corpus must keep (file name → share of replies graded as labelled);
#: on every corpus a wrong letter or a letter where the label says "no answer" fails outright
FLOORS: dict[str, float] = {"grader_corpus.jsonl": 0.98, "grader_corpus_real.jsonl": 0.97}
OUTCOMES = ("ok", "wrong_letter", "missed", "false_answer")


def outcome(expected: str | None, got: str | None) -> str:
    """``ok``, ``wrong_letter`` (two different letters), ``missed`` (labelled a letter, graded no
    answer) or ``false_answer`` (labelled no answer, graded a letter: a guess)."""
    if expected == got:
        return "ok"
    if expected is None:
        return "false_answer"
    if got is None:
        return "missed"
    return "wrong_letter"


def _problem(case: Any) -> str | None:
    """What is wrong with one parsed line, or ``None``.

    >>> _problem({"id": "x"})
    'missing fields choices, expected, finish_reason, lang, response, tags'
    """
    if not isinstance(case, dict):
        return "not a JSON object"
    missing = REQUIRED_FIELDS - case.keys()
    if missing:
        return "missing fields " + ", ".join(sorted(missing))
    extra = case.keys() - REQUIRED_FIELDS - OPTIONAL_FIELDS
    if extra:
        return "unknown fields " + ", ".join(sorted(extra))
    choices = case["choices"]
    if not (isinstance(choices, dict) and 2 <= len(choices) <= 8 and set(choices) <= set(LETTERS)):
        return "field choices: 2 to 8 options lettered A-H expected"
    if not (isinstance(case["tags"], list) and case["tags"] and all(isinstance(t, str) for t in case["tags"])):
        return "field tags: a non-empty list of strings expected"
    if case["lang"] not in LANGS:
        return f"field lang: one of {', '.join(LANGS)} expected"
    if case["finish_reason"] not in ("stop", "length"):
        return "field finish_reason: 'stop' or 'length' expected"
    if case["expected"] is not None and case["expected"] not in choices:
        return "field expected: null or one of the choices' letters expected"
    if not isinstance(case["response"], str):
        return "field response: a string expected"
    return None


def load(path: Path) -> list[dict[str, Any]]:
    """Every case of the corpus at ``path``; :class:`~anesbench.errors.InvalidInput` naming the file, line and field
    of the first bad one (or a repeated id)."""
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}: not JSON ({exc.msg})") from None
        problem = _problem(case)
        if problem is None and case["id"] in seen:
            problem = f"id {case['id']!r} repeated"
        if problem is not None:
            raise InvalidInput(f"{path}:{number}: {problem}")
        seen.add(case["id"])
        cases.append(case)
    return cases


@dataclass(frozen=True, slots=True)
class Graded:
    """One case with what the grader said about it."""

    case: dict[str, Any]
    got: Extraction
    outcome: str


def grade(cases: Iterable[dict[str, Any]]) -> list[Graded]:
    """Grade every case with :func:`anesbench.grading.extract_answer`."""
    out = []
    for case in cases:
        got = extract_answer(case["choices"], case["response"], finish_reason=case["finish_reason"])
        out.append(Graded(case, got, outcome(case["expected"], got.pred)))
    return out


def tally(graded: Iterable[Graded], keys: Callable[[Graded], Iterable[str]]) -> dict[str, tuple[int, int]]:
    """``{key: (ok, total)}`` over ``graded``, each case counted under every key ``keys`` gives it."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in graded:
        for key in keys(g):
            counts[key][0] += g.outcome == "ok"
            counts[key][1] += 1
    return {key: (ok, n) for key, (ok, n) in counts.items()}


def template_of(case: dict[str, Any]) -> str:
    """The prompt template a real reply answered: ``source.template``, else the middle of a
    ``real-<template>-<lang>`` tag, else ``"-"``.

    >>> template_of({"source": {"template": "anesbench-paper"}}), template_of({"tags": ["real-cot-zh"]})
    ('anesbench-paper', 'cot')
    """
    source = case.get("source")
    if isinstance(source, dict) and "template" in source:
        return str(source["template"])
    for tag in case.get("tags", ()):
        parts = tag.split("-")
        if len(parts) >= 3 and parts[0] == "real" and parts[-1] in LANGS:
            return "-".join(parts[1:-1])
    return "-"


def confusion(graded: Iterable[Graded], keys: Callable[[Graded], Iterable[str]]) -> dict[str, Counter[str]]:
    """``{key: Counter of outcomes}`` over ``graded``, each case counted under every key ``keys`` gives it.

    >>> g = Graded({"lang": "en"}, Extraction(None, "none_no_match"), "missed")
    >>> confusion([g], lambda g: [g.case["lang"]])
    {'en': Counter({'missed': 1})}
    """
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for g in graded:
        for key in keys(g):
            out[key][g.outcome] += 1
    return dict(out)


#: which labelled files of real replies are tuning (rules may be written from them) and which are
#: held out (scored, never read to write a rule): ``<file under tests/data> <tuning|held_out> <model>`` a line
SPLIT_FILE = "corpus_split.txt"
PARTS = ("tuning", "held_out")


@dataclass(frozen=True, slots=True)
class Declared:
    """One real-reply file of the split."""

    path: Path
    part: str
    model: str


def split(data: Path) -> list[Declared]:
    """The files the split under ``data`` declares; :class:`~anesbench.errors.InvalidInput` naming the
    line of a malformed entry."""
    path = data / SPLIT_FILE
    out: list[Declared] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields_ = line.split("#", 1)[0].split()
        if not fields_:
            continue
        if len(fields_) != 3 or fields_[1] not in PARTS:
            raise InvalidInput(f"{path}:{number}: '<file> <tuning|held_out> <model>' expected")
        out.append(Declared(data / fields_[0], fields_[1], fields_[2]))
    return out


def grading_patterns() -> list[re.Pattern[str]]:
    """Every distinct compiled pattern the grader holds: the module-level values of
    ``anesbench.grading``'s modules, walked into containers and dataclasses (the rule table)."""
    found: dict[int, re.Pattern[str]] = {}

    def walk(value: object, depth: int) -> None:
        if isinstance(value, re.Pattern):
            found[id(value)] = value
        elif depth < 4 and isinstance(value, (tuple, list, set, frozenset)):
            for item in value:
                walk(item, depth + 1)
        elif depth < 4 and isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)
        elif depth < 4 and is_dataclass(value) and not isinstance(value, type):
            for field in fields(value):
                walk(getattr(value, field.name), depth + 1)

    names = ["anesbench.grading"] + [f"anesbench.grading.{m.name}" for m in pkgutil.iter_modules(anesbench.grading.__path__)]
    for name in names:
        for value in vars(importlib.import_module(name)).values():
            walk(value, 0)
    return list(found.values())


__all__ = ["FLOORS", "OUTCOMES", "PARTS", "Declared", "Graded", "confusion", "grade", "grading_patterns", "load",
           "outcome", "split", "tally", "template_of"]
