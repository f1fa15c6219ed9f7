"""Turn raw records into validated :class:`Item` objects, reporting every problem, directly or through a
column mapping of another layout.

Each problem names where it is (file and line, or item index) and, when known, the item id and
the field, e.g. ``data.jsonl:12 (id q-7): field 'answer': 'E' is not one of the options A-D``.

Other layouts: a mapping is a list of ``KEY=COLUMN`` pairs (``--fields``), or the same keys in a JSON object
(``--fields-file``, where ``options`` may also be an object of letter to column)::

    id=qid,question=stem,options=A:opa|B:opb|C:opc|D:opd,answer=cop,answer_format=index0,level=difficulty

* ``options``: lettered columns ``A:COL|B:COL|…`` (from A, in order; an item whose last columns are
  empty has fewer options), or one column holding a list of option texts (A, B, … in order) or an
  object of letter to text.
* ``answer_format``: ``letter`` (the default), ``index0`` (0 is A) or ``index1`` (1 is A).
* ``level``: required, because the board reports accuracy per cognitive level: 1, 2, 3 or
  system1, system1.x, system2 in the column.
* ``language``: the language of the question and options, ``en`` (the default) or ``zh``.

A mapped record keeps the AnesBench validation; problems name the source column:

>>> mapping = parse_fields("id=qid,question=stem,options=choices,answer=cop,answer_format=index1,level=lvl")
>>> mapping.apply({"qid": "q1", "stem": "Which?", "choices": ["x", "y"], "cop": 2, "lvl": "system2"})
({'id': 'q1', 'en_question': 'Which?', 'choice_num': 2, 'en_A': 'x', 'en_B': 'y', 'answer': 'B', 'level': 3}, [])
>>> mapping.source_field("en_question"), mapping.source_field("choice_num")
('stem', 'choices')
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anesbench.dataset.model import LANGUAGES, LETTERS, LEVEL_NAMES, MAX_CHOICES, MIN_CHOICES, Item, LocalizedQuestion
from anesbench.errors import InvalidInput

KEYS = ("id", "question", "options", "answer", "answer_format", "level", "language")
REQUIRED = ("id", "question", "options", "answer", "level")
ANSWER_FORMATS = {"letter": None, "index0": 0, "index1": 1}  # format -> the index of option A
CHOICES = {"answer_format": (ANSWER_FORMATS, "letter, index0 or index1"),  # key -> its values, as a message lists them
           "language": (LANGUAGES, " or ".join(LANGUAGES))}
LEVEL_VALUES = {**{str(number): number for number in LEVEL_NAMES}, **{name: number for number, name in LEVEL_NAMES.items()}}

Issue = tuple[str, str]  # (source column, problem)


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which source column holds each AnesBench field."""

    id: str
    question: str
    answer: str
    level: str
    option_columns: tuple[str, ...] = ()  # one column per letter, from A
    options_column: str | None = None  # or one column of a list or a letter -> text object
    answer_format: str = "letter"
    language: str = "en"

    @property
    def options_field(self) -> str:
        return self.options_column or "|".join(self.option_columns)

    def sha256(self, file_sha256: str) -> str:
        """What identifies the mapped dataset: the file's bytes and this mapping (another mapping, another series)."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{file_sha256}\n{canonical}".encode()).hexdigest()

    def source_field(self, field: str) -> str:
        """The source column an AnesBench field comes from (the validator's problems name it)."""
        if field in ("id", "answer", "level"):
            return str(getattr(self, field))
        if field == f"{self.language}_question":
            return self.question
        if field == "choice_num" or self.options_column is not None:
            return self.options_field
        letter = field.removeprefix(f"{self.language}_")
        index = LETTERS.find(letter) if len(letter) == 1 else -1
        return self.option_columns[index] if 0 <= index < len(self.option_columns) else field

    def apply(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
        """The record in the AnesBench layout, and the problems only the mapping can name."""
        mapped: dict[str, Any] = {"id": record.get(self.id), f"{self.language}_question": record.get(self.question)}
        options, bad_options = self._options(record)
        if not bad_options:
            mapped["choice_num"] = len(options)
            mapped.update((f"{self.language}_{letter}", text) for letter, text in zip(LETTERS, options, strict=False))
        mapped["answer"], bad_answer = self._answer(record.get(self.answer), None if bad_options else len(options))
        mapped["level"], bad_level = _level(record.get(self.level))
        found = ((self.options_field, bad_options), (self.answer, bad_answer), (self.level, bad_level))
        return mapped, [(column, problem) for column, problem in found if problem]

    def _options(self, record: Mapping[str, Any]) -> tuple[list[Any], str | None]:
        if self.options_column is None:
            values = [record.get(column) for column in self.option_columns]
            given = [n for n, value in enumerate(values) if isinstance(value, str) and value.strip()]
            options = values[: given[-1] + 1] if given else []
        else:
            value = record.get(self.options_column)
            if isinstance(value, Mapping):
                keys = sorted(str(key) for key in value)
                if keys != list(LETTERS[: len(keys)]):
                    return [], f"option letters {', '.join(keys)} do not run A, B, C… without a gap"
                options = [value[key] for key in LETTERS[: len(keys)]]
            elif isinstance(value, (list, tuple)):
                options = list(value)
            elif value is None:
                return [], "missing"
            else:
                return [], f"expected a list of options or an object of letter: option, got {type(value).__name__}"
        if not MIN_CHOICES <= len(options) <= MAX_CHOICES:
            return [], f"expected {MIN_CHOICES} to {MAX_CHOICES} options, got {len(options)}"
        return options, None

    def _answer(self, value: Any, count: int | None) -> tuple[Any, str | None]:
        base = ANSWER_FORMATS[self.answer_format]
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, None  # the validator reports it: missing or empty
        if base is None:
            return (value, None) if isinstance(value, str) else (None, f"expected an option letter, got {value!r}")
        index = whole_number(value)
        last = base + (count if count is not None else MAX_CHOICES) - 1
        if index is None or not base <= index <= last:
            return None, f"{value!r} is not an option index {base}-{last} ({self.answer_format})"
        return LETTERS[index - base], None


def whole_number(value: Any, *, text: bool = True) -> int | None:
    """``3``, ``3.0`` (and with ``text``, ``" 3"``) as an int; anything else, ``True`` included, as None."""
    if isinstance(value, str):
        return int(value.strip()) if text and value.strip().isdigit() else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None


def _level(value: Any) -> tuple[int | None, str | None]:
    number = whole_number(value) if not isinstance(value, str) else LEVEL_VALUES.get(value.strip().lower())
    if number in LEVEL_NAMES:
        return number, None
    return None, f"unknown level {value!r} (expected 1, 2, 3, system1, system1.x or system2)"


def parse_fields(spec: str) -> FieldMap:
    """A mapping from ``--fields``: ``KEY=COLUMN`` pairs separated by commas."""
    pairs: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = (piece.strip() for piece in part.partition("="))
        if not sep or not key:
            raise InvalidInput(f"{part.strip()!r} is not KEY=COLUMN", field="fields")
        if key in pairs:
            raise InvalidInput(f"{key!r} is given twice", field="fields")
        pairs[key] = value
    return _field_map(pairs, "", "fields")


def read_fields_file(path: str | Path) -> FieldMap:
    """A mapping from ``--fields-file``: a JSON object with the keys of ``--fields``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="fields_file") from None
    except ValueError as exc:
        raise InvalidInput(f"{path}: invalid JSON: {exc}", field="fields_file") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a JSON object of KEY: COLUMN, got {type(data).__name__}",
                           field="fields_file")
    return _field_map(data, f"{path}: ", "fields_file")


def _field_map(pairs: Mapping[str, Any], where: str, field: str) -> FieldMap:
    def bad(message: str) -> InvalidInput:
        return InvalidInput(where + message, field=field)

    unknown = [key for key in pairs if key not in KEYS]
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (keys: {', '.join(KEYS)})")
    for key, value in pairs.items():
        if not (isinstance(value, str) or (key == "options" and isinstance(value, Mapping))):
            raise bad(f"{key!r} must be a string" + (" or an object of LETTER: COLUMN" if key == "options" else ""))
        if not value or (isinstance(value, str) and not value.strip()):
            raise bad(f"{key!r} has no column")
    for key in REQUIRED:
        if key == "level" and key not in pairs:
            raise bad("missing 'level': the board reports accuracy per cognitive level; map a column of "
                      "1, 2, 3 or system1, system1.x, system2")
        if key not in pairs:
            raise bad(f"missing {key!r} (required: {', '.join(REQUIRED)})")
    for key, (allowed, listed) in CHOICES.items():
        if key in pairs and pairs[key] not in allowed:
            raise bad(f"{key}: unknown {pairs[key]!r} ({listed})")
    columns, column = _option_columns(pairs["options"], bad)
    rest = {key: value for key, value in pairs.items() if key != "options"}
    return FieldMap(**rest, option_columns=columns, options_column=column)


def _option_columns(value: str | Mapping[str, Any], bad: Callable[[str], InvalidInput]) -> tuple[tuple[str, ...], str | None]:
    """``A:COL|B:COL|…`` (or an object of letter to column) as columns in letter order; else one list column."""
    if isinstance(value, str):
        if ":" not in value and "|" not in value:
            return (), value
        lettered = []
        for part in value.split("|"):
            letter, sep, column = (piece.strip() for piece in part.partition(":"))
            if not sep or not letter or not column:
                raise bad(f"options: {part.strip()!r} is not LETTER:COLUMN")
            lettered.append((letter, column))
    else:
        lettered = list(value.items())
    for expected, (letter, column) in zip(LETTERS, lettered, strict=False):
        if letter != expected:
            raise bad(f"options: letter {letter!r} where {expected!r} comes next (letters run A, B, C… in order)")
        if not isinstance(column, str) or not column.strip():
            raise bad(f"options: letter {letter!r} has no column")
    if not MIN_CHOICES <= len(lettered) <= MAX_CHOICES:
        raise bad(f"options: {len(lettered)} lettered columns, expected {MIN_CHOICES} to {MAX_CHOICES}")
    return tuple(column.strip() for _, column in lettered), None


MAX_REPORTED = 20
LANGUAGE_PREFIXES: dict[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "cn")}


class Problems:
    """Every problem found; called, one of the record being checked: named in the source's own columns, and
    not again for a column the mapping already reported."""

    def __init__(self, fields: FieldMap | None = None) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.records = 0  # objects read
        self.items = 0  # valid items yielded
        self.languages: set[str] = set()  # languages some record has a question field for
        self.fields = fields
        self.where, self.item_id, self.reported = "", "", set[str]()

    def add(self, where: str, item_id: str | None, field: str | None, message: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED:
            who = f" (id {item_id})" if item_id else ""
            what = f"field '{field}': " if field else ""
            self.lines.append(f"{where}{who}: {what}{message}")

    def start(self, where: str, item_id: str | None, issues: list[Issue]) -> None:
        self.where, self.item_id, self.reported = where, item_id or "", {column for column, _ in issues}
        for column, message in issues:
            self.add(where, item_id, column, message)

    def __call__(self, field: str, message: str) -> None:
        column = self.fields.source_field(field) if self.fields is not None else field
        if column not in self.reported:
            self.add(self.where, self.item_id, column, message)


def _why_not_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, str) and value.strip():
        return None
    return "missing" if value is None else "empty or not text"


def _localized(record: Mapping[str, Any], language: str, letters: str, report: Problems) -> LocalizedQuestion | None:
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
    records: Iterable[tuple[str, Any]], wanted: tuple[str, ...], source: str, fields: FieldMap | None = None,
    *, unique: bool = True,
) -> Generator[Item, None, Problems]:
    """The valid items of ``(where, record)`` pairs for the requested languages, one by one; at the end,
    raise InvalidInput listing every problem. ``fields`` reads each record through a column mapping first.

    ``unique=False``, for a file read again during a run after it was validated whole: no duplicate-id
    check (nor the index of every id it needs), and the problems are returned, not raised."""
    problems = Problems(fields)
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
        problems.start(where, item_id, issues)
        if not item_id:
            problems("id", "missing or empty")
        elif unique and item_id in seen:
            problems("id", f"duplicate id (first seen at {seen[item_id]})")
        elif unique:
            seen[item_id] = where
        item = _item(record, item_id, wanted, problems)
        if item is not None and not issues:
            problems.items += 1
            yield item
    if not unique:
        return problems
    if not problems.count and not problems.items:
        problems.add(source, None, None, "the dataset has no items")
    absent = [language for language in wanted if language not in problems.languages]
    if problems.count and problems.records and absent:
        # Every item lacks the language: one line says so, not one per field and item.
        has = ", ".join(language for language in LANGUAGES if language in problems.languages) or "none"
        names = " or ".join(f"{prefix}_question" for prefix in LANGUAGE_PREFIXES[absent[0]])
        raise InvalidInput(f"{source}: no item has language {absent[0]!r} (no field {names}); "
                           f"the items have: {has}", field="languages")
    if problems.count:
        more = f"\n  … and {problems.count - MAX_REPORTED} more" if problems.count > MAX_REPORTED else ""
        plural = "s" if problems.count > 1 else ""
        raise InvalidInput(
            f"invalid dataset {source}: {problems.count} problem{plural}\n  " + "\n  ".join(problems.lines) + more
        )
    return problems


def _item(record: Mapping[str, Any], item_id: str | None, wanted: tuple[str, ...], report: Problems) -> Item | None:
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
