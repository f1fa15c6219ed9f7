"""The stand-in server's replies look like real models', carry the letter they were written to
commit to, and the grader reads that letter (the stand-in never consults the grader, so a grading
regression fails here)."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest

from anesbench.grading import extract_answer, strip_think
from anesbench_testkit.standin.replies import STYLES, UNANSWERED, compose_reply

CHOICE_SETS = {
    "en": [
        {"A": "Propofol", "B": "Ketamine", "C": "Dantrolene", "D": "Succinylcholine"},
        {"A": "Vitamin A toxicity", "B": "Vitamin K deficiency", "C": "Hepatitis C infection",
         "D": "Type A personality"},
        {"A": "Class I", "B": "Class II", "C": "Class III", "D": "Class IV"},
        {"A": "0.75%", "B": "1.15%", "C": "2.0%", "D": "6.0%", "E": "1.7%"},
        {"A": "True", "B": "False"},
        {"A": "Interscalene block", "B": "Supraclavicular block", "C": "Infraclavicular block", "D": "Axillary block",
         "E": "Femoral nerve block", "F": "Adductor canal block", "G": "Popliteal sciatic block", "H": "TAP block"},
        {"A": "None of the above is correct", "B": "Give option B drugs", "C": "The answer is unclear",
         "D": "Wrong site"},
        {"A": "Hypotension", "B": "Bradycardia", "C": "hypotension", "D": "Tachycardia"},  # twins
    ],
    "zh": [
        {"A": "丙泊酚", "B": "氯胺酮", "C": "丹曲林", "D": "琥珀胆碱"},
        {"A": "维生素A过量", "B": "维生素K缺乏", "C": "丙型肝炎", "D": "A型性格"},
        {"A": "20%脂肪乳剂", "B": "碳酸氢钠", "C": "血管加压素", "D": "普萘洛尔", "E": "纳洛酮"},
        {"A": "以上说法都正确", "B": "答案不确定", "C": "选用罗哌卡因", "D": "错误的体位"},
        {"A": "B超检查", "B": "CT检查", "C": "磁共振检查", "D": "X线检查"},
        {"A": "低血压", "B": "心动过缓", "C": "低血压", "D": "心动过速"},  # twins
    ],
}
SEEDS = range(40)


def _grader_misses(reason: str) -> pytest.MarkDecorator:
    """A case the grader reads wrongly today. Strict: once the grader reads it right, the mark must go."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"grader: {reason}")


#: (style, language, choice set) the grader misreads; every other combination must be read exactly.
GRADER_MISSES = {
    ("verdicts", "en", 6): "verdicts on options whose text says 'is correct' / 'answer' read as ambiguous",
    ("verdicts", "zh", 3): "verdicts on options whose text holds 正确/答案/选/错误 read as ambiguous",
    ("option_text_only", "en", 6): "an option text 'The answer is unclear' named as the answer is not read",
    ("option_text_only", "zh", 1): "'答案是A型性格' (D's text) read as letter A",
    ("option_text_only", "zh", 3): "'最合适的是答案不确定' (B's text) is not read",
    ("option_text_only", "zh", 4): "'应选择B超检查' (A's text) read as letter B",
}


def test_the_stand_in_does_not_import_the_grader() -> None:
    code = ("import sys, anesbench_testkit.standin.server, anesbench_testkit.standin.__main__; "
            "print(sorted(m for m in sys.modules if m.startswith(('anesbench.grading', 'anesbench.grader'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("style", STYLES)
def test_each_reply_names_what_it_commits_to(style: str) -> None:
    choices = CHOICE_SETS["en"][0]
    for seed in range(20):
        letter = None if style in UNANSWERED else "C"
        reply = compose_reply(style, letter=letter, choices=choices, language="en", rng=random.Random(seed))
        if style in UNANSWERED:
            assert reply.intended is None, reply
        elif style == "option_text_only":
            assert reply.intended == "C" and "Dantrolene" in reply.content, reply
        else:
            assert reply.intended == "C" and re.search(r"(?<![A-Za-z])C(?![A-Za-z])", reply.content), reply


def test_a_reply_naming_a_text_two_options_share_commits_to_no_answer() -> None:
    choices = {"A": "Hypotension", "B": "Bradycardia", "C": "hypotension"}
    for seed in range(20):
        reply = compose_reply("option_text_only", letter="C", choices=choices, language="en", rng=random.Random(seed))
        assert "hypotension" in reply.content.lower() and reply.intended is None, reply
        other = compose_reply("option_text_only", letter="B", choices=choices, language="en", rng=random.Random(seed))
        assert other.intended == "B", other


def _grading_cases() -> list[object]:
    cases: list[object] = []
    for language, sets in CHOICE_SETS.items():
        for index in range(len(sets)):
            for style in STYLES:
                miss = GRADER_MISSES.get((style, language, index))
                cases.append(pytest.param(style, language, index, id=f"{style}-{language}-{index}",
                                          marks=() if miss is None else _grader_misses(miss)))
    return cases


@pytest.mark.parametrize(("style", "language", "index"), _grading_cases())
def test_the_grader_reads_every_style_as_its_intended_letter(style: str, language: str, index: int) -> None:
    choices = CHOICE_SETS[language][index]
    for seed in SEEDS:
        rng = random.Random(f"{style}:{language}:{index}:{seed}")
        letter = None if style in UNANSWERED else rng.choice(sorted(choices))
        reply = compose_reply(style, letter=letter, choices=choices, language=language, rng=rng)
        got = extract_answer(choices, reply.content, finish_reason=reply.finish_reason)
        assert got.pred == reply.intended, (style, language, seed, reply, got)


def test_replies_are_a_pure_function_of_the_request() -> None:
    choices = CHOICE_SETS["zh"][0]
    for style in STYLES:
        letter = None if style in UNANSWERED else "B"
        first, again = (compose_reply(style, letter=letter, choices=choices, language="zh", rng=random.Random("k"))
                        for _ in range(2))
        assert first == again


def test_styles_that_answer_finish_with_stop_and_truncated_with_length() -> None:
    choices = CHOICE_SETS["en"][0]
    for style in STYLES:
        letter = None if style in UNANSWERED else "C"
        reply = compose_reply(style, letter=letter, choices=choices, language="en", rng=random.Random(3))
        assert reply.finish_reason == ("length" if style == "truncated" else "stop")


def test_language_of_reply_follows_the_question() -> None:
    for style in STYLES:
        letter = None if style in UNANSWERED else "B"
        for seed in range(20):
            zh = compose_reply(style, letter=letter, choices=CHOICE_SETS["zh"][0], language="zh",
                               rng=random.Random(seed)).content
            en = compose_reply(style, letter=letter, choices=CHOICE_SETS["en"][0], language="en",
                               rng=random.Random(seed)).content
            if style not in ("lone_letter", "json"):
                assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (style, zh)
            assert not any("\u4e00" <= ch <= "\u9fff" for ch in en), (style, en)


def test_think_trace_uses_both_reasoning_channels_and_mentions_other_letters() -> None:
    choices = CHOICE_SETS["en"][0]
    seen_field = seen_inline = False
    for seed in range(60):
        reply = compose_reply("think_trace", letter="C", choices=choices, language="en", rng=random.Random(seed))
        content, reasoning = reply.content, reply.reasoning
        if reasoning is not None:
            seen_field = True
            assert "<think>" not in content
            assert any(f"option {x}" in reasoning for x in "ABD")
        else:
            seen_inline = True
            assert content.startswith("<think>") and strip_think(content) != content
    assert seen_field and seen_inline


def test_wording_is_varied() -> None:
    choices = CHOICE_SETS["en"][0]
    for style in ("concise", "cot", "option_text_only", "refusal", "truncated", "self_correction"):
        letter = None if style in UNANSWERED else "C"
        texts = {compose_reply(style, letter=letter, choices=choices, language="en", rng=random.Random(s)).content
                 for s in range(40)}
        assert len(texts) >= 2, style


def test_unknown_style_and_missing_letter_are_errors() -> None:
    choices = CHOICE_SETS["en"][0]
    with pytest.raises(ValueError):
        compose_reply("poetry", letter="A", choices=choices, language="en", rng=random.Random(0))
    with pytest.raises(ValueError):
        compose_reply("concise", letter=None, choices=choices, language="en", rng=random.Random(0))
    with pytest.raises(ValueError):
        compose_reply("concise", letter="F", choices=choices, language="en", rng=random.Random(0))


ADVERSARIAL_OPTIONS = [
    "Propofol", "Propofol infusion", "Class A", "Vitamin C", "None of the above", "Increase", "No change", "0.5 mg/kg",
    "Is correct", "Wrong", "A and B", "丙泊酚", "丙泊酚输注", "以上都对", "选B", "答案不确定", "C-reactive protein",
    "Option E", "(A) only", "True", "It is A", "Therefore, C", "The answer is B", "答案是D", "A", "\\boxed{B}",
    '{"answer": "A"}',
]


#: styles the grader misreads when option texts look like answers; the others must be read exactly
ADVERSARIAL_MISSES = {
    "verdicts": "an option text such as 'Is correct' or '\\boxed{B}' inside a verdict line",
    "option_text_only": "an option text such as 'It is A' or 'Option E' named as the answer",
    "markdown_bold": "an option text such as '选B' or '答案是D' in the explanation after the answer",
    "json": "an option text such as '{\"answer\": \"A\"}' or '答案是D' in the explanation",
    "truncated": "an option text such as '\\boxed{B}' or '答案是D' quoted in reasoning cut off before an answer",
    "think_trace": "an option text such as 'It is A' right after the final letter",
    "concise": "an option text such as 'Therefore, C' right after the final letter",
    "cot": "an option text such as '\\boxed{B}' right after the final letter",
    "self_correction": "an option text such as '答案是D' quoted in the sentence that rejects the first answer",
}


@pytest.mark.parametrize("style", [
    pytest.param(style, marks=() if style not in ADVERSARIAL_MISSES else _grader_misses(ADVERSARIAL_MISSES[style]))
    for style in STYLES
])
def test_option_texts_that_look_like_answers_do_not_fool_the_grader(style: str) -> None:
    for seed in range(300):
        rng = random.Random(f"{style}:{seed}")
        choices = {"ABCDEFGH"[i]: rng.choice(ADVERSARIAL_OPTIONS) for i in range(rng.randint(2, 8))}
        letter = None if style in UNANSWERED else rng.choice(sorted(choices))
        reply = compose_reply(style, letter=letter, choices=choices, language=rng.choice(["en", "zh"]), rng=rng)
        got = extract_answer(choices, reply.content, finish_reason=reply.finish_reason)
        assert got.pred == reply.intended, (seed, reply, got)
