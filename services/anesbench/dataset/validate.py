"""Turn raw AnesBench records into validated :class:`Item` objects, reporting every problem.

Each problem names where it is (file and line, or item index) and, when known, the item id and
the field, e.g. ``data.jsonl:12 (id q-7): field 'answer': 'E' is not one of the options A-D``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from anesbench.dataset.mapping import FieldMap, whole_number
from anesbench.dataset.model import LANGUAGES, LETTERS, MAX_CHOICES, MIN_CHOICES, Item, LocalizedQuestion
from anesbench.errors import InvalidInput

MAX_REPORTED = 20
LANGUAGE_PREFIXES: dict[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "cn")}


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.records = 0  # objects read
        self.languages: set[str] = set()  # languages some record has a question field for

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


def _why_not_text(record: Mapping[str, Any], key: str) -> str | None:
    """None when ``key`` holds some text, else what is wrong with it."""
    value = record.get(key)
    if isinstance(value, str) and value.strip():
        return None
    return "missing" if value is None else "empty or not text"


def _localized(record: Mapping[str, Any], language: str, letters: str, report: _Report) -> LocalizedQuestion | None:
    """One language's stem and options; None when a problem was reported."""
    prefixes = LANGUAGE_PREFIXES[language]
    prefix = next((p for p in prefixes if f"{p}_question" in record), prefixes[0])
    needed = {f"{prefix}_question": f" (language '{language}' was requested)"}
    needed.update((f"{prefix}_{letter}", f": option {letter} of {len(letters)} (language '{language}')")
                  for letter in letters)
    ok = True
    for key, context in needed.items():
        if problem := _why_not_text(record, key):
            report(key, problem + context)
            ok = False
    for letter in LETTERS[len(letters) :]:
        if _why_not_text(record, f"{prefix}_{letter}") is None:
            report(f"{prefix}_{letter}", f"option {letter} is given but choice_num is {len(letters)}")
            ok = False
    if not ok:
        return None
    return LocalizedQuestion(question=record[f"{prefix}_question"],
                             options={letter: record[f"{prefix}_{letter}"] for letter in letters})


def validated(
    records: Iterable[tuple[str, Any]], wanted: tuple[str, ...], source: str, fields: FieldMap | None = None
) -> Iterator[Item]:
    """The valid items of ``(where, record)`` pairs for the requested languages, one by one; at the end,
    raise InvalidInput listing every problem."""
    problems = Problems()
    count = 0
    for item in checked_items(records, wanted, problems, fields=fields):
        count += 1
        yield item
    if not problems.count and not count:
        problems.add(source, None, None, "the dataset has no items")
    absent = [language for language in wanted if language not in problems.languages]
    if problems.count and problems.records and absent:
        # Every item lacks the language: one line says so, not one per field and item.
        has = ", ".join(language for language in LANGUAGES if language in problems.languages) or "none"
        names = " or ".join(f"{prefix}_question" for prefix in LANGUAGE_PREFIXES[absent[0]])
        raise InvalidInput(f"{source}: no item has language {absent[0]!r} (no field {names}); "
                           f"the items have: {has}", field="languages")
    problems.raise_if_any(source)


class _Report:
    """Problems of one record, named in the source's own columns; a column the mapping already
    reported is not reported again by the checks that follow."""

    def __init__(self, problems: Problems, where: str, item_id: str | None, fields: FieldMap | None,
                 issues: list[tuple[str, str]]) -> None:
        self.problems, self.where, self.item_id, self.fields = problems, where, item_id, fields
        self.reported = {column for column, _ in issues}
        for column, message in issues:
            problems.add(where, item_id, column, message)

    def __call__(self, field: str | None, message: str) -> None:
        column = self.fields.source_field(field) if self.fields is not None and field else field
        if column not in self.reported:
            self.problems.add(self.where, self.item_id, column, message)


def checked_items(
    records: Iterable[tuple[str, Any]], wanted: tuple[str, ...], problems: Problems, *, unique: bool = True,
    fields: FieldMap | None = None,
) -> Iterator[Item]:
    """Yield the valid items one by one; every problem found goes to ``problems``.

    ``fields`` reads each record through a column mapping first. ``unique=False`` skips the
    duplicate-id check (and the index of every id it needs): for a file read again during a run
    after it was validated whole."""
    seen: dict[str, str] = {}
    for where, raw in records:
        if not isinstance(raw, Mapping):
            problems.add(where, None, None, f"expected a JSON object, got {type(raw).__name__}")
            continue
        record, issues = (raw, []) if fields is None else fields.apply(raw)
        problems.records += 1
        problems.languages.update(language for language, prefixes in LANGUAGE_PREFIXES.items()
                                  if any(f"{prefix}_question" in record for prefix in prefixes))
        raw_id = record.get("id")
        item_id = raw_id.strip() if isinstance(raw_id, str) else None
        report = _Report(problems, where, item_id, fields, issues)
        if not item_id:
            report("id", "missing or empty")
        elif unique and item_id in seen:
            report("id", f"duplicate id (first seen at {seen[item_id]})")
        elif unique:
            seen[item_id] = where
        item = _item(record, item_id, wanted, report)
        if item is not None and not issues:
            yield item


def _item(record: Mapping[str, Any], item_id: str | None, wanted: tuple[str, ...], report: _Report) -> Item | None:
    choice_num = whole_number(record.get("choice_num"), text=False)
    if choice_num is None or not MIN_CHOICES <= choice_num <= MAX_CHOICES:
        report("choice_num", f"must be a whole number from {MIN_CHOICES} to {MAX_CHOICES}, got {record.get('choice_num')!r}")
        choice_num = None
    level = whole_number(record.get("level"), text=False)
    ok = level in (1, 2, 3)
    if not ok:
        report("level", f"unknown level {record.get('level')!r} (expected 1, 2 or 3)")
    answer = record.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        report("answer", "missing or empty")
        ok = False
    elif choice_num is not None and ok and answer.strip() not in LETTERS[:choice_num]:
        report("answer", f"{answer!r} is not one of the options A-{LETTERS[choice_num - 1]}")
        ok = False
    if choice_num is None:
        return None
    read = {language: _localized(record, language, LETTERS[:choice_num], report) for language in wanted}
    texts = {language: text for language, text in read.items() if text is not None}
    if ok and item_id and level is not None and isinstance(answer, str) and len(texts) == len(wanted):
        return Item(id=item_id, choice_num=choice_num, answer=answer.strip(), level=level, texts=texts)
    return None
