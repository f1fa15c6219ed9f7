"""Datasets in other layouts, read through a column mapping: the grammar, its errors, and loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anesbench.dataset import FieldMap, load_dataset, parse_fields, read_fields_file
from anesbench.dataset.load import ItemsOnDisk
from anesbench.errors import InvalidInput
from tests.conftest import ROOT

LETTERED = "id=qid,question=stem,options=A:opa|B:opb|C:opc|D:opd,answer=cop,answer_format=index0,level=difficulty"
LISTED = "id=qid,question=stem,options=choices,answer=cop,answer_format=index1,level=difficulty,language=zh"
MAPPED_SET = ROOT / "tests" / "data" / "amcqa-mapped.jsonl"


def _medmcqa(n: int, **change: Any) -> dict[str, Any]:
    """A record in a MedMCQA-like layout: four option columns, a 0-based answer index."""
    record: dict[str, Any] = {"qid": f"m-{n}", "stem": f"Which drug {n}?", "opa": f"a{n}", "opb": f"b{n}",
                              "opc": f"c{n}", "opd": f"d{n}", "cop": n % 4, "difficulty": 1 + n % 3}
    record.update(change)
    return record


def _zh(n: int, **change: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"qid": f"z-{n}", "stem": f"问题{n}", "choices": ["甲", "乙", "丙", "丁", "戊"][: 4 + n % 2],
                              "cop": 1 + n % 4, "difficulty": ("system1", "system1.x", "system2")[n % 3]}
    record.update(change)
    return record


def test_lettered_columns_with_a_zero_based_answer() -> None:
    mapping = parse_fields(LETTERED)
    assert mapping == FieldMap(id="qid", question="stem", answer="cop", level="difficulty",
                               option_columns=("opa", "opb", "opc", "opd"), answer_format="index0")
    record, issues = mapping.apply(_medmcqa(2))
    assert issues == []
    assert record == {"id": "m-2", "en_question": "Which drug 2?", "choice_num": 4, "en_A": "a2", "en_B": "b2",
                      "en_C": "c2", "en_D": "d2", "answer": "C", "level": 3}


def test_empty_last_option_columns_give_fewer_options() -> None:
    record, issues = parse_fields(LETTERED).apply(_medmcqa(1, opd=None, opc=""))
    assert issues == [] and record["choice_num"] == 2 and "en_C" not in record


@pytest.mark.parametrize(("value", "letter"), [([1, 2], "A"), ({"B": "y", "A": "x"}, "A")])
def test_one_options_column_as_a_list_or_an_object(value: object, letter: str) -> None:
    mapping = parse_fields("id=q,question=s,options=o,answer=a,level=l")
    record, issues = mapping.apply({"q": "1", "s": "?", "o": value, "a": letter, "l": "2"})
    assert issues == [] and record["choice_num"] == 2 and record["level"] == 2
    assert (record["en_A"], record["en_B"]) == ((1, 2) if isinstance(value, list) else ("x", "y"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("id=qid,question", "fields: 'question' is not KEY=COLUMN"),
        ("id=qid,id=other", "fields: 'id' is given twice"),
        (LETTERED + ",stem=x", "fields: unknown key 'stem' (keys: id, question, options, answer, answer_format, "
                               "level, language)"),
        ("id=qid,question=stem,options=c,answer=cop", "fields: missing 'level': the board reports accuracy per "
                                                     "cognitive level; map a column of 1, 2, 3 or system1, "
                                                     "system1.x, system2"),
        ("question=stem,options=c,answer=cop,level=l", "fields: missing 'id' (required: id, question, options, "
                                                       "answer, level)"),
        ("id=qid,question= ,options=c,answer=cop,level=l", "fields: 'question' has no column"),
        ("id=q,question=s,options=c,answer=a,level=l,answer_format=index2",
         "fields: answer_format: unknown 'index2' (letter, index0 or index1)"),
        ("id=q,question=s,options=c,answer=a,level=l,language=fr", "fields: language: unknown 'fr' (en or zh)"),
        ("id=q,question=s,options=A:a|b,answer=a,level=l", "fields: options: 'b' is not LETTER:COLUMN"),
        ("id=q,question=s,options=A:a|C:c,answer=a,level=l",
         "fields: options: letter 'C' where 'B' comes next (letters run A, B, C… in order)"),
        ("id=q,question=s,options=A:a,answer=a,level=l", "fields: options: 1 lettered columns, expected 2 to 8"),
    ],
)
def test_grammar_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_fields(spec)
    assert str(caught.value) == message


def test_a_fields_file_has_the_same_keys_and_options_may_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"id": "qid", "question": "stem", "answer": "cop", "answer_format": "index0",
                                "level": "difficulty", "options": {"A": "opa", "B": "opb", "C": "opc", "D": "opd"}}))
    assert read_fields_file(path) == parse_fields(LETTERED)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1]", "fields_file: {path}: expected a JSON object of KEY: COLUMN, got list"),
        ('{"id": 3}', "fields_file: {path}: 'id' must be a string"),
        ('{"id": "q", "question": "s", "options": ["a"], "answer": "a", "level": "l"}',
         "fields_file: {path}: 'options' must be a string or an object of LETTER: COLUMN"),
        ("{", "fields_file: {path}: invalid JSON: Expecting property name enclosed in double quotes: "
              "line 1 column 2 (char 1)"),
    ],
)
def test_fields_file_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(content)
    with pytest.raises(InvalidInput) as caught:
        read_fields_file(path)
    assert str(caught.value) == message.format(path=path)


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_loading_each_format_through_a_mapping(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"medmcqa{suffix}", [_medmcqa(n) for n in range(6)])
    dataset = load_dataset(path, ["en"], fields=parse_fields(LETTERED))
    items = list(dataset.items)
    assert dataset.name == "medmcqa"
    assert [item.answer for item in items] == list("ABCDAB")
    assert [item.level for item in items] == [1, 2, 3, 1, 2, 3]
    assert items[5].texts["en"].options == {"A": "a5", "B": "b5", "C": "c5", "D": "d5"}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_list_column_zh_only_set_with_five_options(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"AMCQA{suffix}", [_zh(n) for n in range(4)])
    dataset = load_dataset(path, ["zh"], fields=parse_fields(LISTED))
    assert isinstance(dataset.items, ItemsOnDisk)  # streamed: read again through the mapping on each pass
    items = list(dataset.items)
    assert dataset.name == "AMCQA"
    assert [item.choice_num for item in items] == [4, 5, 4, 5]
    assert items[1].texts["zh"].options["E"] == "戊" and items[1].answer == "B"


def test_problems_name_the_line_the_id_and_the_source_column(tmp_path: Path) -> None:
    records = [_medmcqa(0), _medmcqa(1, cop=7), _medmcqa(2, difficulty="hard"), _medmcqa(3, stem=""),
               _medmcqa(4, opb=None), _medmcqa(5, cop=True), _medmcqa(0)]
    path = _write(tmp_path / "bad.jsonl", records)
    with pytest.raises(InvalidInput) as caught:
        load_dataset(path, ["en"], fields=parse_fields(LETTERED))
    assert str(caught.value) == "\n  ".join([
        f"invalid dataset {path}: 6 problems",
        f"{path}:2 (id m-1): field 'cop': 7 is not an option index 0-3 (index0)",
        f"{path}:3 (id m-2): field 'difficulty': unknown level 'hard' (expected 1, 2, 3, system1, system1.x or system2)",
        f"{path}:4 (id m-3): field 'stem': empty or not text (language 'en' was requested)",
        f"{path}:5 (id m-4): field 'opb': missing: option B of 4 (language 'en')",
        f"{path}:6 (id m-5): field 'cop': True is not an option index 0-3 (index0)",
        f"{path}:7 (id m-0): field 'qid': duplicate id (first seen at {path}:1)",
    ])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"choices": "甲乙"}, "field 'choices': expected a list of options or an object of letter: option, got str"),
        ({"choices": ["甲"]}, "field 'choices': expected 2 to 8 options, got 1"),
        ({"choices": {"A": "甲", "C": "丙"}}, "field 'choices': option letters A, C do not run A, B, C… without a gap"),
        ({"choices": None}, "field 'choices': missing"),
        ({"cop": 0}, "field 'cop': 0 is not an option index 1-4 (index1)"),
        ({"cop": None}, "field 'cop': missing or empty"),
        ({"qid": None}, "field 'qid': missing or empty"),
    ],
)
def test_list_column_problems(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = _write(tmp_path / "zh.jsonl", [_zh(0, **change)])
    with pytest.raises(InvalidInput) as caught:
        load_dataset(path, ["zh"], fields=parse_fields(LISTED))
    assert f"{path}:1" in str(caught.value) and message in str(caught.value)


def test_a_letter_answer_is_checked_like_the_anesbench_layout(tmp_path: Path) -> None:
    path = _write(tmp_path / "letters.jsonl", [_medmcqa(0, cop="E")])
    with pytest.raises(InvalidInput, match="field 'cop': 'E' is not one of the options A-D"):
        load_dataset(path, ["en"], fields=parse_fields(LETTERED.replace("answer_format=index0", "answer_format=letter")))


def test_the_mapping_reads_one_language(tmp_path: Path) -> None:
    path = _write(tmp_path / "zh.jsonl", [_zh(0)])
    with pytest.raises(InvalidInput) as caught:
        load_dataset(path, ["en", "zh"], fields=parse_fields(LISTED))
    assert str(caught.value) == f"languages: {path}: the field mapping reads language 'zh' only; ask for zh alone"


def test_the_sha256_covers_the_file_and_the_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", [_medmcqa(n) for n in range(4)])
    zero = load_dataset(path, ["en"], fields=parse_fields(LETTERED))
    again = load_dataset(path, ["en"], fields=parse_fields(LETTERED))
    other = load_dataset(path, ["en"], fields=parse_fields(LETTERED.replace("id=qid", "id=stem")))
    assert zero.sha256 == again.sha256
    assert other.sha256 != zero.sha256  # another mapping of the same bytes is another series


def test_the_bundled_mapped_set_loads_with_its_mapping_file() -> None:
    mapping = read_fields_file(MAPPED_SET.with_name("amcqa-mapped.fields.json"))
    dataset = load_dataset(MAPPED_SET, ["zh"], fields=mapping)
    items = list(dataset.items)
    assert dataset.name == "amcqa-mapped" and len(items) == 10
    assert {item.level for item in items} == {1, 2, 3} and {item.choice_num for item in items} == {4, 5}
