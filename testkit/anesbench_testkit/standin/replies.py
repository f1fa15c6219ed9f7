"""Realistic model replies for the OpenAI-compatible stand-in server.

Each style imitates how a family of real models answers an AnesBench question (terse letter,
chain of thought, GPT-4o markdown, ``\\boxed{}``, JSON, option-by-option verdicts, a
self-correction, a DeepSeek-R1 reasoning trace, replies naming only the option text, refusals,
truncated reasoning), in English or Chinese, with randomised wording. Each reply carries, as data,
the letter it was written to commit to (``None`` for ``refusal`` and ``truncated``, and for a
reply that names only an option text another option shares): the stand-in never asks the grader
how its replies read, so a grading regression shows in the tests that compare the grader with
:attr:`Reply.intended`. Every style is rendered whatever the options say, also where an option's
own text reads like an answer ("The answer is B", "以上都对", "B超检查"): those are the cases a
grader gets wrong. Rendering is plain string formatting (a few µs) and a pure function of its
arguments and ``rng``.

>>> import random
>>> reply = compose_reply(
...     "concise", letter="B", choices={"A": "Propofol", "B": "Ketamine"}, language="en", rng=random.Random(1))
>>> reply.intended, reply.finish_reason
('B', 'stop')
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

STYLES: tuple[str, ...] = (
    "concise", "cot", "markdown_bold", "boxed", "json", "verdicts", "self_correction", "think_trace",
    "option_text_only", "lone_letter", "refusal", "truncated",
)
#: styles that answer no question (``letter`` is ignored and may be None)
UNANSWERED: frozenset[str] = frozenset({"refusal", "truncated"})

_EN_FINAL = (
    "The answer is {L}.", "Answer: {L}", "Final answer: ({L})", "The correct answer is {L}. {T}.",
    "Therefore, the answer is {L}.", "So the best answer is {L}) {T}.", "Correct option: {L}",
    "I would choose {L}.", "Thus, the correct choice is {L}.", "{L} is the correct answer.",
)
_ZH_FINAL = (
    "答案：{L}", "答案是{L}。", "正确答案为{L}。", "故选{L}。", "因此本题选{L}。", "最终答案：（{L}）",
    "综上所述，正确答案是{L}（{T}）。", "应选{L}。", "本题答案为{L}。",
)
_EN_OPEN = (
    "Let's think step by step.", "Let me work through this question.", "Key considerations:",
    "We need to identify the single best option.", "Let's analyze the clinical scenario.",
)
_ZH_OPEN = ("我们逐步分析。", "解析：", "本题考查麻醉学相关知识。", "分析如下：", "先回顾相关知识点。")
_EN_BODY = (
    "{T} fits the mechanism and the clinical picture described in the question.",
    "The key point is the pharmacology of {T}, which matches the scenario.",
    "Current guidelines and standard anesthesia texts support {T} here.",
    "{T} is consistent with the timing and the physiology involved.",
)
_EN_AGAINST = (
    "{W} is a plausible distractor but does not address the main problem.",
    "{W} would be less appropriate in this setting.",
    "{W} does not match the timing of the presentation.",
)
_ZH_BODY = (
    "{T}符合题干所述的机制和临床表现。", "根据麻醉学教材和现行指南，{T}最为合适。", "{T}与发病时间和病理生理特点相符。",
)
_ZH_AGAINST = ("{W}是干扰项，不能解决主要问题。", "{W}在此情况下不够合适。", "{W}与题干的时间特点不符。")
_EN_WALK = ("{X}. {T}: consider its mechanism and timing.", "- {T} ({X}): relevant pharmacology reviewed.",
            "Option {X} ({T}) is discussed in standard texts.")
_ZH_WALK = ("{X}. {T}：需结合其作用机制判断。", "- {T}（{X}）：回顾相关药理。", "选项{X}（{T}）见于标准教材。")
_EN_REFUSAL = (
    "I'm sorry, but I cannot provide medical advice. Please consult a qualified healthcare professional.",
    "As an AI language model, I am not able to make clinical decisions for specific patients.",
    "I can't answer this question without more clinical context. "
    "Please discuss it with the attending anesthesiologist.",
)
_ZH_REFUSAL = (
    "抱歉，我无法回答这个问题。如有医疗问题，请咨询专业医生。",
    "作为一个AI助手，我不能提供具体的医疗建议，请遵循所在医院的诊疗规范。",
    "我无法回答这个问题。",
)
_EN_TRUNC = (
    "Let's analyze this step by step.\n\nFirst, consider option {W0} ({T0}). The pharmacology is relevant because",
    "To answer this, we need to recall the physiology involved. Option {W0}, {T0}, acts by",
    "This question tests an important concept. Looking at {T0} first: its onset, duration and the",
)
_ZH_TRUNC = (
    "我们逐项分析：\n\n{W0}. {T0}：该药物的作用机制是",
    "首先回顾相关知识点。选项{W0}（{T0}）主要通过",
    "本题考查重要的麻醉学概念。先看{T0}，其起效时间和",
)
_EN_OPTION_TEXT = ("The best choice is {T}.", "{T}.", "The most appropriate option here is {T}.", "I'd go with {T}.")
_ZH_OPTION_TEXT = ("首选{T}。", "应选择{T}。", "最合适的是{T}。", "答案是{T}。")


def _singles_out(letter: str, choices: Mapping[str, str]) -> bool:
    """Whether naming ``letter``'s text commits to ``letter``: no other option has the same text.

    >>> _singles_out("B", {"A": "Propofol", "B": "Ketamine"}), _singles_out("B", {"A": "Wrong", "B": "wrong"})
    (True, False)
    """
    text = choices[letter].strip().lower()
    return sum(1 for other in choices.values() if other.strip().lower() == text) == 1


def _other(letter: str, letters: list[str], rng: random.Random) -> str:
    """A letter other than ``letter`` (itself if there is no other).

    >>> _other("A", ["A", "B"], random.Random(0))
    'B'
    """
    others = [x for x in letters if x != letter]
    return rng.choice(others) if others else letter


def _final(zh: bool, rng: random.Random, letter: str, text: str) -> str:
    """One final-answer sentence.

    >>> _final(False, random.Random(0), "C", "Dantrolene") in [t.format(L="C", T="Dantrolene") for t in _EN_FINAL]
    True
    """
    return rng.choice(_ZH_FINAL if zh else _EN_FINAL).format(L=letter, T=text)


def _reasoning(zh: bool, rng: random.Random, letter: str, choices: Mapping[str, str], letters: list[str]) -> str:
    """A few sentences of reasoning for ``letter`` (naming option texts, never a final answer).

    >>> "Ketamine" in _reasoning(False, random.Random(0), "B", {"A": "Propofol", "B": "Ketamine"}, ["A", "B"])
    True
    """
    wrong = _other(letter, letters, rng)
    text = choices[letter]
    parts = [rng.choice(_ZH_OPEN if zh else _EN_OPEN)]
    parts.append(rng.choice(_ZH_BODY if zh else _EN_BODY).format(T=text))
    if wrong != letter:
        parts.append(rng.choice(_ZH_AGAINST if zh else _EN_AGAINST).format(W=choices[wrong]))
    joiner = "" if zh else " "
    return parts[0] + ("\n" if rng.random() < 0.5 else " ") + joiner.join(parts[1:])


def _verdicts(zh: bool, rng: random.Random, letter: str, choices: Mapping[str, str], letters: list[str]) -> str:
    """An option-by-option verdict list with only ``letter`` judged correct.

    >>> print(_verdicts(True, random.Random(0), "B", {"A": "丙泊酚", "B": "氯胺酮"}, ["A", "B"]))
    逐项分析：
    A项错误：丙泊酚不符合题意。
    B项正确：氯胺酮符合题意。
    """
    lines = []
    for x in letters:
        good = x == letter
        if zh:
            verdict, fit = ("正确", "符合题意。") if good else ("错误", "不符合题意。")
            lines.append(f"{x}项{verdict}：{choices[x]}{fit}")
        else:
            verdict = rng.choice(("correct", "the correct answer")) if good else rng.choice(("incorrect", "wrong"))
            lines.append(f"Option {x} is {verdict} ({choices[x]}).")
    head = "逐项分析：" if zh else rng.choice(("Let's evaluate each option:", "Option-by-option analysis:"))
    return head + "\n" + "\n".join(lines)


def _render(
    style: str, letter: str, choices: Mapping[str, str], zh: bool, rng: random.Random
) -> tuple[str, str | None]:
    """``(content, reasoning_content)`` of an answering style.

    >>> _render("lone_letter", "C", {"C": "x"}, False, random.Random(0))[1] is None
    True
    """
    letters = list(choices)
    text = choices[letter]
    if style == "concise":
        if zh and rng.random() < 0.15:  # Chinese IMEs often emit full-width letters: "答案：Ｃ"
            return rng.choice(("答案：{L}", "故选{L}。", "正确答案为{L}。")).format(L=chr(ord(letter) + 0xFEE0)), None
        return _final(zh, rng, letter, text), None
    if style == "lone_letter":
        return rng.choice(("{L}", "{L}.", "({L})", "**{L}**")).format(L=letter), None
    if style == "cot":
        body = _reasoning(zh, rng, letter, choices, letters)
        if rng.random() < 0.5:  # walk through every option, without judging any of them
            line = rng.choice(_ZH_WALK if zh else _EN_WALK)
            body += "\n\n" + "\n".join(line.format(X=x, T=choices[x]) for x in letters)
        return body + "\n\n" + _final(zh, rng, letter, text), None
    if style == "markdown_bold":
        expl = rng.choice(_ZH_BODY if zh else _EN_BODY).format(T=text)
        head = "答案" if zh else "Answer"
        if rng.random() < 0.5:
            return f"**{head}{'：' if zh else ': '}{letter}**\n\n{expl}", None
        return f"## {head}\n**{letter}. {text}**\n\n{expl}", None
    if style == "boxed":
        box = rng.choice(("\\boxed{{{L}}}", "\\boxed{{\\text{{{L}}}}}")).format(L=letter)
        lead = rng.choice(_ZH_BODY if zh else _EN_BODY).format(T=text)
        return f"{lead}\n\n{'最终答案：' if zh else 'The final answer is '}${box}$", None
    if style == "json":
        expl = rng.choice(_ZH_BODY if zh else _EN_BODY).format(T=text).replace('"', "'")
        body = f'{{"answer": "{letter}", "explanation": "{expl}"}}'
        return (f"```json\n{body}\n```" if rng.random() < 0.4 else body), None
    if style == "verdicts":
        return _verdicts(zh, rng, letter, choices, letters), None
    if style == "self_correction":
        wrong = _other(letter, letters, rng)
        if zh:
            first = f"答案是{wrong}。不对，再想一下：{choices[wrong]}并不合适。更正：答案是{letter}。"
        else:
            first = rng.choice((
                f"Initially I thought {wrong}, but on reflection {choices[wrong]} does not fit. "
                f"The answer is actually {letter}.",
                f"The answer is {wrong}. Wait, that's not right: {choices[wrong]} does not fit. "
                f"Correction: the answer is {letter}.",
            ))
        return first, None
    if style == "think_trace":
        wrong = _other(letter, letters, rng)
        if zh:
            trace = f"嗯，这道题先看选项{wrong}，{choices[wrong]}？好像不对。再看选项{letter}，{text}，应该是它。"
        else:
            trace = (f"Okay, let me look at option {wrong} first: {choices[wrong]}? Hmm, probably not the answer. "
                     f"Option {letter}, {text}, fits better. So it's {letter}.")
        final = _final(zh, rng, letter, text)
        if rng.random() < 0.5:
            return final, trace
        return f"<think>\n{trace}\n</think>\n\n{final}", None
    if style == "option_text_only":
        return rng.choice(_ZH_OPTION_TEXT if zh else _EN_OPTION_TEXT).format(T=text), None
    raise ValueError(f"unknown reply style {style!r}; expected one of {STYLES}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One rendered reply and the letter it was written to commit to (``None``: it answers nothing)."""

    content: str
    reasoning: str | None
    finish_reason: str
    intended: str | None
    style: str


def compose_reply(
    style: str, *, letter: str | None, choices: Mapping[str, str], language: str, rng: random.Random
) -> Reply:
    """The reply in ``style`` and ``language`` ("en" or "zh") written to commit to ``letter`` (ignored,
    may be None, for the :data:`UNANSWERED` styles); ``intended`` says what it does commit to.

    >>> compose_reply("option_text_only", letter="B", choices={"A": "x", "B": "X"}, language="en",
    ...               rng=random.Random(0)).intended
    >>> compose_reply("refusal", letter=None, choices={"A": "x", "B": "y"}, language="zh", rng=random.Random(0)).intended
    """
    if style not in STYLES:
        raise ValueError(f"unknown reply style {style!r}; expected one of {STYLES}")
    zh = language.lower().startswith(("zh", "cn"))
    if style == "refusal":
        return Reply(rng.choice(_ZH_REFUSAL if zh else _EN_REFUSAL), None, "stop", None, style)
    if style == "truncated":
        w0 = rng.choice(list(choices)) if choices else "A"
        content = rng.choice(_ZH_TRUNC if zh else _EN_TRUNC).format(W0=w0, T0=choices.get(w0, ""))
        return Reply(content, None, "length", None, style)
    if letter is None or letter not in choices:
        raise ValueError(f"style {style!r} needs a letter among {sorted(choices)}, got {letter!r}")
    content, reasoning = _render(style, letter, choices, zh, rng)
    if style == "option_text_only" and not _singles_out(letter, choices):
        return Reply(content, reasoning, "stop", None, style)  # what it names is not one option's alone
    return Reply(content, reasoning, "stop", letter, style)
