"""Dataset loading and validation: every problem is reported with file, line or id, and field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anesbench.dataset import load_dataset
from anesbench.errors import InvalidInput
from tests.conftest import SAMPLE, make_record, make_records


def test_loads_jsonl_with_both_languages(write_jsonl) -> None:
    path = write_jsonl(make_records(6))
    dataset = load_dataset(path, ["en", "zh"])
    assert [item.id for item in dataset.items] == [f"q-{n:04d}" for n in range(6)]
    items = list(dataset.items)
    assert items[1].texts["zh"].options["B"] == "药物1-1"
    assert items[1].choice_num == 5 and items[1].level == 2
    assert len(dataset.sha256) == 64 and dataset.name == "data"


def test_json_array_and_cn_prefix(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps([make_record(1, zh_prefix="cn")], ensure_ascii=False), encoding="utf-8")
    item = next(iter(load_dataset(path, ["zh"]).items))
    assert item.texts["zh"].question.startswith("问题1")


def test_parquet_with_null_extra_options(tmp_path: Path) -> None:
    records = [make_record(0, choice_num=4), make_record(1, choice_num=6)]
    columns = sorted({key for record in records for key in record})
    table = pa.table({key: [record.get(key) for record in records] for key in columns})
    path = tmp_path / "anesbench.parquet"
    pq.write_table(table, path)
    dataset = load_dataset(path, ["en", "zh"])
    assert [item.choice_num for item in dataset.items] == [4, 6]
    items = list(dataset.items)
    assert items[1].texts["en"].options["F"] == "Drug 1-5"


def test_sha256_is_of_the_file_bytes(write_jsonl) -> None:
    import hashlib

    path = write_jsonl(make_records(2))
    assert load_dataset(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def _error(path: Path, languages: tuple[str, ...] = ("en",)) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_dataset(path, languages)
    return str(caught.value)


def test_jsonl_syntax_error_names_line(write_jsonl, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(make_record(1)) + "\n{not json\n", encoding="utf-8")
    assert "broken.jsonl:2:2: invalid JSON" in _error(path)


def test_json_array_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": "a",\n  }\n]', encoding="utf-8")
    assert "broken.json:3:" in _error(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": ""}, "field 'id': missing or empty"),
        ({"answer": "E"}, "field 'answer': 'E' is not one of the options A-D"),
        ({"answer": ""}, "field 'answer': missing or empty"),
        ({"level": 4}, "field 'level': unknown level 4"),
        ({"level": "system1"}, "field 'level': unknown level 'system1'"),
        ({"choice_num": 9}, "field 'choice_num': must be a whole number from 2 to 8"),
        ({"choice_num": 1}, "field 'choice_num': must be a whole number from 2 to 8"),
        ({"en_question": "  "}, "field 'en_question': empty or not text"),
        ({"en_C": None}, "field 'en_C': missing: option C of 4"),
        ({"en_E": "extra"}, "field 'en_E': option E is given but choice_num is 4"),
    ],
)
def test_field_problems_name_line_id_and_field(write_jsonl, change: dict, expected: str) -> None:
    record = make_record(7, answer="A")
    record.update(change)
    path = write_jsonl([make_record(1), record])
    message = _error(path)
    assert "data.jsonl:2" in message
    assert expected in message


def test_missing_requested_language(write_jsonl) -> None:
    record = make_record(3)
    for key in [k for k in record if k.startswith("zh_")]:
        del record[key]
    message = _error(write_jsonl([make_record(1), record]), ("en", "zh"))
    assert "(id q-0003): field 'zh_question': missing (language 'zh' was requested)" in message


def test_a_set_without_a_requested_language_says_so_once(write_jsonl) -> None:
    records = [{k: v for k, v in make_record(n, zh_prefix="cn").items() if not k.startswith("en_")} for n in range(3)]
    path = write_jsonl(records)
    assert _error(path) == (f"languages: {path}: no item has language 'en' (no field en_question); "
                            "the items have: zh")


def test_a_zh_only_set_with_cn_fields_and_up_to_eight_options_loads_under_its_own_name(tmp_path: Path) -> None:
    records = [{k: v for k, v in make_record(n, choice_num=4 + n, zh_prefix="cn").items() if not k.startswith("en_")}
               for n in range(5)]
    path = tmp_path / "AMCQA.v2.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    dataset = load_dataset(path, ["zh"])
    items = list(dataset.items)
    assert dataset.name == "AMCQA"
    assert [item.choice_num for item in items] == [4, 5, 6, 7, 8]
    assert "".join(items[4].texts["zh"].options) == "ABCDEFGH" and items[4].texts["zh"].options["H"] == "药物4-7"


def test_duplicate_ids(write_jsonl) -> None:
    message = _error(write_jsonl([make_record(1), make_record(2), make_record(1)]))
    assert "data.jsonl:3 (id q-0001): field 'id': duplicate id (first seen at" in message


def test_not_an_object_and_empty_file(write_jsonl, tmp_path: Path) -> None:
    assert "expected a JSON object, got list" in _error(write_jsonl([[1, 2]]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert "no items" in _error(empty)


def test_every_problem_is_reported(write_jsonl) -> None:
    bad = [make_record(n, answer="H") for n in range(3)]
    message = _error(write_jsonl(bad))
    assert "3 problems" in message and message.count("field 'answer'") == 3


def test_unknown_language_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown language"):
        load_dataset(tmp_path / "x.jsonl", ["fr"])
    with pytest.raises(InvalidInput, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")


def test_bundled_sample_is_valid_and_balanced() -> None:
    dataset = load_dataset(SAMPLE, ["en", "zh"])
    levels = [item.level for item in dataset.items]
    assert len(dataset.items) >= 60
    assert all(levels.count(level) >= 20 for level in (1, 2, 3))
    assert {item.choice_num for item in dataset.items} >= {4, 5}


def test_jsonl_is_read_line_by_line_with_bom_and_bad_bytes_named(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(make_record(1)).encode() + b"\n" + b'{"id": "\xff"}\n')
    assert "bom.jsonl:2: not UTF-8 text" in _error(path)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(make_record(1)).encode() + b"\n")
    assert next(iter(load_dataset(path).items)).id == "q-0001"


def test_damaged_parquet_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    assert "unreadable Parquet file" in _error(path)


def test_a_jsonl_dataset_is_read_again_per_pass_and_a_changed_file_is_refused(write_jsonl) -> None:
    path = write_jsonl(make_records(4))
    dataset = load_dataset(path, ["en"])
    assert len(dataset.items) == 4
    assert [item.id for item in dataset.items] == [item.id for item in dataset.items]  # two passes, same items
    path.write_text(path.read_text(encoding="utf-8") + json.dumps(make_record(99)) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="changed while a run was reading it"):
        list(dataset.items)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_large_json_array_is_streamed_and_validated_like_a_small_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    from anesbench.dataset import load as load_module

    records = make_records(30)
    records[7]["en_B"] = ""  # one bad record among good ones
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"data": records} if wrapped else records, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InvalidInput) as whole:
        load_dataset(path, ["en", "zh"])
    small = whole.value
    monkeypatch.setattr(load_module, "JSON_STREAM_BYTES", 100)  # this file now counts as large
    with pytest.raises(InvalidInput) as streamed:
        load_dataset(path, ["en", "zh"])
    assert str(streamed.value) == str(small) and "item #7" in str(small)
    records[7]["en_B"] = "fixed"
    path.write_text(json.dumps({"data": records} if wrapped else records, ensure_ascii=False), encoding="utf-8")
    dataset = load_dataset(path, ["en", "zh"])
    assert isinstance(dataset.items, load_module.ItemsOnDisk)  # read from disk again during the run
    assert [item.id for item in dataset.items] == [r["id"] for r in records]
    path.write_text(json.dumps(records)[:-40], encoding="utf-8")  # cut short
    with pytest.raises(InvalidInput, match=r"big.json: invalid JSON after item #\d+"):
        load_dataset(path, ["en"])
