"""Prompt templates: bundled default in both languages, custom files, and precise errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from anesbench.dataset import load_dataset
from anesbench.errors import InvalidInput
from anesbench.prompts import load_template
from tests.conftest import LETTERS, make_record


def test_default_template_renders_english_and_chinese(write_jsonl) -> None:
    item = next(iter(load_dataset(write_jsonl([make_record(2, choice_num=5)]), ["en", "zh"]).items))
    template = load_template()
    en = template.render(item, "en")
    assert [m["role"] for m in en] == ["system", "user"]
    assert "anesthesiologist" in en[0]["content"]
    assert "Question 2:" in en[1]["content"] and "\nE. Drug 2-4" in en[1]["content"]
    assert "The answer is X" in en[1]["content"]
    zh = template.render(item, "zh")
    assert "麻醉" in zh[0]["content"] and "A. 药物2-0" in zh[1]["content"] and "答案是X" in zh[1]["content"]


def test_template_file_is_identified_by_name_and_sha(tmp_path: Path, write_jsonl) -> None:
    raw = json.dumps({"name": "paper", "en": {"system": "", "user": "{question}\n{options}\nAnswer:"}}).encode()
    path = tmp_path / "paper.json"
    path.write_bytes(raw)
    template = load_template(str(path))
    assert template.name == "paper" and template.sha256 == hashlib.sha256(raw).hexdigest()
    item = next(iter(load_dataset(write_jsonl([make_record(1)])).items))
    assert template.render(item, "en") == [{"role": "user", "content": item.texts["en"].question + "\n"
                                            + "\n".join(f"{k}. {v}" for k, v in item.texts["en"].options.items())
                                            + "\nAnswer:"}]
    with pytest.raises(InvalidInput, match="no 'zh' section"):
        template.require(("en", "zh"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "invalid JSON"),
        ('{"en": {"user": "{question} {options}"}}', "field 'name': missing"),
        ('{"name": "x", "en": {"user": "{question}"}}', "needs exactly the placeholders"),
        ('{"name": "x", "en": {"user": "{question} {options} {extra}"}}', "needs exactly the placeholders"),
        ('{"name": "x"}', "needs an 'en' or 'zh' section"),
    ],
)
def test_bad_templates(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=expected):
        load_template(str(path))


def test_unknown_template_name() -> None:
    with pytest.raises(InvalidInput, match="no bundled template or file named 'nope'"):
        load_template("nope")


@pytest.mark.parametrize(
    ("choice_num", "en_letters", "zh_letters"),
    [
        (2, "from A and B as", "从A和B中"),
        (4, "from A, B, C and D as", "从A、B、C和D中"),
        (5, "from A, B, C, D and E as", "从A、B、C、D和E中"),
        (8, "from A, B, C, D, E, F, G and H as", "从A、B、C、D、E、F、G和H中"),
    ],
)
def test_paper_template_lists_the_items_own_letters(write_jsonl, choice_num: int, en_letters: str,
                                                    zh_letters: str) -> None:
    item = next(iter(load_dataset(write_jsonl([make_record(3, choice_num=choice_num)]), ["en", "zh"]).items))
    template = load_template("anesbench-paper")
    assert template.name == "anesbench-paper"
    en = template.render(item, "en")
    assert [m["role"] for m in en] == ["system", "user"]
    assert "medical AI assistant" in en[0]["content"] and "anesthesiology" in en[0]["content"]
    user = en[1]["content"]
    assert f"select the most suitable single choice {en_letters} your final answer" in user
    assert "Think step by step" in user and "Write nothing after the answer." in user
    options = "\n".join(f"{letter}. {text}" for letter, text in item.texts["en"].options.items())
    assert user.endswith(f"{item.texts['en'].question}\n{options}")
    assert "{" not in user
    zh = template.render(item, "zh")[1]["content"]
    assert zh_letters in zh and "逐步思考" in zh and zh.endswith(item.texts["zh"].options[LETTERS[choice_num - 1]])


def test_letters_placeholder_is_optional_and_checked(tmp_path: Path, write_jsonl) -> None:
    path = tmp_path / "letters.json"
    path.write_text(json.dumps({"name": "l", "en": {"user": "{question}\n{options}\nPick one of {letters}."}}))
    item = next(iter(load_dataset(write_jsonl([make_record(1, choice_num=3)])).items))
    assert load_template(str(path)).render(item, "en")[0]["content"].endswith("Pick one of A, B and C.")
    path.write_text(json.dumps({"name": "l", "en": {"user": "{letters}"}}))
    with pytest.raises(InvalidInput, match="needs exactly the placeholders"):
        load_template(str(path))
