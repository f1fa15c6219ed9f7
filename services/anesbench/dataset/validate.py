"""Turn raw AnesBench records into validated :class:`Item` objects, reporting every problem.

Each problem names where it is (file and line, or item index) and, when known, the item id and
the field, e.g. ``data.jsonl:12 (id q-7): field 'answer': 'E' is not one of the options A-D``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from anesbench.dataset.model import LETTERS, MAX_CHOICES, MIN_CHOICES, Item, LocalizedQuestion
from anesbench.errors import InvalidInput

MAX_REPORTED = 20
LANGUAGE_PREFIXES: dict[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "cn")}


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def add(self, where: str, item_id: str | None, field: str | None, message: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED:
            who = f" (id {item_id})" if item_id else ""
            what = f"field '{field}': " if field else ""
            self.lines.append(f"{where}{who}: {what}{message}")

    def raise_if_any(self, source: str) -> None:
        if not self.count:
            return
        more = f"\n  … and {self.count - MAX_REPORTED} more" if self.count > MAX_REPORTED else ""
        plural = "s" if self.count > 1 else ""
        raise InvalidInput(
            f"invalid dataset {source}: {self.count} problem{plural}\n  " + "\n  ".join(self.lines) + more
        )


def _int_field(record: Mapping[str, Any], field: str) -> int | None:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    return int(value)


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _localized(
    record: Mapping[str, Any], language: str, letters: str
) -> tuple[LocalizedQuestion | None, list[tuple[str, str]]]:
    """Read one language's stem and options; return (question or None, [(field, problem)])."""
    prefix = next(
        (p for p in LANGUAGE_PREFIXES[language] if f"{p}_question" in record), LANGUAGE_PREFIXES[language][0]
    )
    problems: list[tuple[str, str]] = []
    question = _text(record, f"{prefix}_question")
    if question is None:
        state = "missing" if record.get(f"{prefix}_question") is None else "empty or not text"
        problems.append((f"{prefix}_question", f"{state} (language '{language}' was requested)"))
    options: dict[str, str] = {}
    for letter in letters:
        key = f"{prefix}_{letter}"
        text = _text(record, key)
        if text is None:
            state = "missing" if record.get(key) is None else "empty or not text"
            problems.append((key, f"{state}: option {letter} of {len(letters)} (language '{language}')"))
        else:
            options[letter] = text
    for letter in LETTERS[len(letters) :]:
        key = f"{prefix}_{letter}"
        if _text(record, key) is not None:
            problems.append((key, f"option {letter} is given but choice_num is {len(letters)}"))
    if problems:
        return None, problems
    return LocalizedQuestion(question=question or "", options=options), []


def validate_records(
    records: Iterable[tuple[str, Any]], languages: Iterable[str], source: str
) -> list[Item]:
    """Validate ``(where, record)`` pairs for the requested languages; raise InvalidInput listing problems."""
    problems = Problems()
    items = list(checked_items(records, tuple(languages), problems))
    _finish(problems, len(items), source)
    return items


def count_valid(records: Iterable[tuple[str, Any]], languages: Iterable[str], source: str) -> int:
    """Validate like :func:`validate_records`, holding only the ids; return the number of items."""
    problems = Problems()
    count = sum(1 for _ in checked_items(records, tuple(languages), problems))
    _finish(problems, count, source)
    return count


def _finish(problems: Problems, count: int, source: str) -> None:
    if not problems.count and not count:
        problems.add(source, None, None, "the dataset has no items")
    problems.raise_if_any(source)


def checked_items(
    records: Iterable[tuple[str, Any]], wanted: tuple[str, ...], problems: Problems, *, unique: bool = True
) -> Iterator[Item]:
    """Yield the valid items one by one; every problem found goes to ``problems``.

    ``unique=False`` skips the duplicate-id check (and the index of every id it needs): for a file
    read again during a run after it was validated whole."""
    seen: dict[str, str] = {}
    for where, record in records:
        if not isinstance(record, Mapping):
            problems.add(where, None, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        raw_id = record.get("id")
        item_id = raw_id.strip() if isinstance(raw_id, str) else None
        if not item_id:
            problems.add(where, None, "id", "missing or empty")
        elif not unique:
            pass
        elif item_id in seen:
            problems.add(where, item_id, "id", f"duplicate id (first seen at {seen[item_id]})")
        else:
            seen[item_id] = where
        ok = True
        choice_num = _int_field(record, "choice_num")
        if choice_num is None or not MIN_CHOICES <= choice_num <= MAX_CHOICES:
            problems.add(
                where, item_id, "choice_num",
                f"must be a whole number from {MIN_CHOICES} to {MAX_CHOICES}, got {record.get('choice_num')!r}",
            )
            ok = False
        level = _int_field(record, "level")
        if level not in (1, 2, 3):
            problems.add(where, item_id, "level", f"unknown level {record.get('level')!r} (expected 1, 2 or 3)")
            ok = False
        answer = record.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            problems.add(where, item_id, "answer", "missing or empty")
            ok = False
        elif choice_num is not None and ok and answer.strip() not in LETTERS[:choice_num]:
            problems.add(
                where, item_id, "answer",
                f"{answer!r} is not one of the options A-{LETTERS[choice_num - 1]}",
            )
            ok = False
        if choice_num is None or not MIN_CHOICES <= choice_num <= MAX_CHOICES:
            continue
        texts: dict[str, LocalizedQuestion] = {}
        for language in wanted:
            localized, issues = _localized(record, language, LETTERS[:choice_num])
            for field, message in issues:
                problems.add(where, item_id, field, message)
            if localized is None:
                ok = False
            else:
                texts[language] = localized
        if ok and item_id and isinstance(answer, str) and level is not None:
            yield Item(id=item_id, choice_num=choice_num, answer=answer.strip(), level=level, texts=texts)
