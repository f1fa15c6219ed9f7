"""``anesbench grade``: JSON Lines in, the same objects plus ``pred`` and ``method`` out, in order.

Every line is checked before any output is written, so bad input produces no partial output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from anesbench.dataset.model import LETTERS
from anesbench.errors import InvalidInput
from anesbench.grading import extract_answer


def _read(source: str) -> tuple[str, list[str]]:
    if source == "-":
        return "<stdin>", sys.stdin.read().splitlines()
    try:
        return source, Path(source).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {source}", field="input") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {source}: {exc}", field="input") from None


def _parse(name: str, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise InvalidInput(f"{name}:{number}: expected a JSON object")
    choices = record.get("choices")
    if not isinstance(choices, dict) or not choices:
        raise InvalidInput(f"{name}:{number}: field 'choices': expected a non-empty object of letter -> option text")
    for letter, text in choices.items():
        if len(letter) != 1 or letter not in LETTERS or not isinstance(text, str):
            raise InvalidInput(f"{name}:{number}: field 'choices.{letter}': keys are letters A-H, values text")
    response = record.get("response")
    if not isinstance(response, str):
        raise InvalidInput(f"{name}:{number}: field 'response': expected text")
    finish = record.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise InvalidInput(f"{name}:{number}: field 'finish_reason': expected text or null")
    return record


def grade_lines(source: str, out: TextIO) -> int:
    name, lines = _read(source)
    records = [_parse(name, number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    for record in records:
        extraction = extract_answer(record["choices"], record["response"], finish_reason=record.get("finish_reason"))
        record["pred"], record["method"] = extraction.pred, extraction.method
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(records)
