"""Answer grader: which option letter a model's reply committed to, or ``None`` ("no answer").

Unlike the AnesBench paper's extractor, which always guesses a letter by fuzzy matching, this
grader never guesses: an unparseable, refusing, truncated or ambiguous reply grades as ``None``,
and every result names the method that decided it (:data:`METHODS`, a bounded set). The order
in which evidence decides:

1. nothing visible after removing reasoning traces → ``none_empty`` / ``none_truncated``;
   a reply that is only a letter ("C", "(C)", "c.") → ``lone_letter`` (even if cut off: a
   one-token answer);
2. the last explicit final answer (phrase, boxed, JSON, tag, conclusion) wins → its letter, or
   ``none_ambiguous`` if it names two letters, ``none_invalid_choice`` if not an option;
3. a cut-off reply (``finish_reason == "length"``) with no such answer → ``none_truncated`` (a
   conclusion cut right after its letter, "Therefore, C", does not count there), unless it named
   one option's text as the answer ("0.25 is the most appropriate choice …") → ``option_text``;
4. a bare letter as the first/last line → ``lone_letter`` / ``letter_with_text``;
5. a closing "... is B." sentence → ``conclusion``;
6. option-by-option verdicts with exactly one option judged correct (none both ways, and no
   final-answer phrase after them that the steps above could not read) → ``verdict``;
7. a refusal → ``none_refusal``;
8. the reply names exactly one option's text → ``option_text``; otherwise ``none_no_match``.

>>> extract_answer({"A": "Propofol", "B": "Ketamine", "C": "Dantrolene"}, "答案：Ｃ")
Extraction(pred='C', method='final_answer_phrase')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from anesbench.grading._final import POLARITY, Hit, find_commitments, judge_options, lower_same_length, matches
from anesbench.grading._normalize import (
    OptionIndex,
    by_option_text,
    goes_round,
    mentions,
    named_as_answer,
    normalize,
    option_index,
    strip_think,
)
from anesbench.grading._rules import STRONG

EXTRACTOR_VERSION = "2026.12.3"  # bump whenever a reply may grade differently; recorded with every run
#: Every method :func:`extract_answer` can return. It is a Prometheus label,
#: so the set is closed: add a name here before any code returns it.
METHODS: tuple[str, ...] = (
    # a letter was found
    "final_answer_phrase",  # "The answer is C", "答案：C", "故选C", "I would choose A", "C is the correct answer"
    "boxed",  # \boxed{C}
    "json",  # {"answer": "C"}
    "answer_tag",  # <answer>C</answer>
    "conclusion",  # "Therefore, C.", "所以C。", "... is C." as the closing sentence
    "lone_letter",  # the reply (or its first/last line) is just "C", "(C)", "**C**"
    "letter_with_text",  # the reply (or its first/last line) is "C. Dantrolene"
    "verdict",  # option-by-option verdicts with exactly one option judged correct
    "option_text",  # the reply names one option's text only ("The best choice is dantrolene.")
    "elicited",  # not the rules': the model's own letter, asked for in a second turn where they found none
    # no answer
    "none_empty",  # nothing visible after removing <think> blocks
    "none_truncated",  # finish_reason "length" and no committed final answer
    "none_refusal",  # "I cannot provide medical advice", "我无法回答这个问题"
    "none_ambiguous",  # two different answers stated as final, or two options judged correct
    "none_invalid_choice",  # the committed letter is not one of the question's options
    "none_no_match",  # nothing the grader is willing to read as an answer
)


@dataclass(frozen=True, slots=True)
class Extraction:
    """The letter a reply committed to (``None`` for no answer) and the method that decided it."""

    pred: str | None
    method: str


_EMPTY = Extraction(None, "none_empty")
_TRUNCATED = Extraction(None, "none_truncated")
_TAIL_CHARS = 300  # searched first; the rest only if the tail holds no commitment
_BARE = re.compile(r"[ \t]*[(\[]?[ \t]*([A-Ha-h])[ \t]*[)\]]?[ \t]*[.。:!]?[ \t]*")
#: a refusal; tried at :data:`_REFUSAL_ANCHORS` only (the caller checks the character before "i"/"as")
_REFUSAL_ANCHORS = ("i ", "i'", "as an", "无法", "不能", "不便", "没法", "不可以", "作为")
_REFUSAL = re.compile(
    r"i[ \t]*(?:cannot|can(?:'|no)t|am[ \t]+(?:not[ \t]+able|unable)|'m[ \t]+(?:not[ \t]+able|unable)"
    r"|won't|will[ \t]+not|must[ \t]+decline|do[ \t]+not[ \t]+feel[ \t]+comfortable|'m[ \t]+not[ \t]+comfortable)"
    r"[ \t]+(?:to[ \t]+)?(?:provide|give|offer|answer|help|assist|recommend|make|choose|select|pick|determine"
    r"|diagnose|respond|comply)"
    r"|as[ \t]+an[ \t]+ai(?![a-z])"
    r"|(?:无法|不能|不便|没法|不可以)(?:回答|提供|作答|给出|推荐|选择|判断|确定唯一|帮助|协助)"
    r"|作为(?:一个)?(?:ai|人工智能)"
)
#: a first or last line that is just the letter: "C", "(C)", "**C**", "C. Dantrolene"
_LINE = re.compile(
    r"^(?:(?:option|choice|answer|选项|答案)[ \t]*:?[ \t]*)?[(\[]?[ \t]*(?P<l>[A-Ha-h])[ \t]*[)\]]?(?![A-Za-z0-9])"
    r"[ \t]*(?P<sep>[.:。、,\-–—)])?[ \t]*(?P<rest>.*)$",
    re.IGNORECASE,
)
#: an option-labelled line: a letter line next to one is a restated option list or an analysis
_LABEL = re.compile(
    r"^[ \t]*(?:[-*•·+][ \t]*)?(?:(?:option|choice|选项)[ \t]*[(\[]?[A-H](?![A-Za-z0-9])"
    r"|[(\[]?[A-H][)\]]?[ \t]*(?:[.:)、(\-–—]|选项|项))",
    re.IGNORECASE,
)
_PUNCT = " \t.。!！:;,)]"
# A line that is one option as the question gave it ("A. 0.1 mmol/L"); at the reply's start, alone, it is
# the reply's first stated answer.
_OPTION_LINE = re.compile(r"(?m)^[ \t]*\(?([A-H])[.)][ \t]+([^\n]*?)[ \t.。]*$")
#: the punctuation that ends a committed letter, then (group 1) the sentence that follows it
_SENTENCE = re.compile(r"[ \t.。:)\]、,\-–—]*([^\n。!?]*?(?=[.!?](?:\s|$)|[。!?\n]|$))")


def _letter_line(text: str, index: OptionIndex) -> tuple[str | None, str] | None:
    """``(letter, method)`` if the last or first line of ``text`` is a bare letter (+ its option
    text) and not one of several option-labelled lines, ``(None, "none_ambiguous")`` if the letter
    and the text disagree, else ``None``.

    >>> _letter_line("A. Propofol\\nB. Ketamine", option_index((("A", "Propofol"), ("B", "Ketamine")))) is None
    True
    """
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    for i in dict.fromkeys((len(lines) - 1, 0)) if lines else ():
        m = _LINE.match(lines[i])
        if m is None or any(_LABEL.match(n) for n in lines[max(0, i - 1):i] + lines[i + 1:i + 2]):
            continue
        letter, rest = m.group("l"), m.group("rest").strip(_PUNCT)
        if not rest:
            if letter.isupper() or len(lines) == 1:
                return letter.upper(), "lone_letter"
            continue
        lower = rest.lower()
        if letter.isupper() and index.is_text_of(letter, lower):  # "B. 6%": too short to search for, but its own
            return letter, "letter_with_text"
        pol = POLARITY.search(lower)  # "C. Dantrolene — Incorrect" is an analysis line
        if letter.islower() or not index.longest_first or (pol is not None and pol.group("neg") is not None):
            continue
        if not index.match_at(lower, 1 if lower[0] in "([" else 0):
            continue
        named = set(mentions(lower, index))
        if named == {letter}:  # "Option A, neostigmine, …; option B, sugammadex, …" names more than its own
            return letter, "letter_with_text"
        if named and letter not in named:
            return None, "none_ambiguous"
    return None


def _opening_answer(text: str, choices: Mapping[str, str]) -> list[str]:
    r"""``[letter]`` of a reply that opens with one option line and lists no other (its first answer), or ``[]``.

    >>> _opening_answer("A. 0.1 mmol/L\n\nThe answer is D.", {"A": "0.1 mmol/L", "D": "4"})
    ['A']
    """
    lines = list(_OPTION_LINE.finditer(text))
    if len(lines) != 1 or lines[0].start() != 0:
        return []
    letter, said = lines[0].group(1), lines[0].group(2)
    return [letter] if str(choices.get(letter, "")).strip().lower().rstrip(".。") == said.lower() else []


def _text_after(text: str, hit: Hit, index: OptionIndex) -> str | None:
    """The letter of another option the sentence right after the committed letter names instead:
    its exact text ("答案是C。氯胺酮。" where that is B's text), or its text as the sentence's
    subject when the committed option's own text is not named and that other is not negated
    ("答案是C。顺阿曲库铵的作用时间受影响最小。" where that is D's)."""
    own = hit.letters[0]
    m = _SENTENCE.match(text, hit.end) if hit.end >= 0 else None
    sentence = (m.group(1) if m else "").strip().lower().rstrip(" \t.。")
    if not sentence or index.is_text_of(own, sentence):  # its own text (twins of other options included)
        return None
    for letter in sorted(index.letters):
        if index.is_text_of(letter, sentence):
            return letter
    hits = index.find_all(sentence)
    first = index.letter_of[hits[0][2]] if hits and hits[0][0] == 0 else None
    named = mentions(sentence, index)
    return first if first != own and first in named and own not in named else None


def _decided(pair: tuple[str | None, str], valid: frozenset[str]) -> Extraction:
    """The extraction ``(letter, method)`` stands for: none when the letter is not one of the options."""
    return Extraction(*pair) if pair[0] is None or pair[0] in valid else Extraction(None, "none_invalid_choice")


def _resolve(hit: Hit, valid: frozenset[str], text: str, index: OptionIndex) -> Extraction:
    """The extraction a commitment stands for: its letter, or why it gives none (several letters;
    not an option; the letter followed by another option's text)."""
    letter = hit.letters[0]
    if len(hit.letters) > 1 or (letter in valid and _text_after(text, hit, index) not in (None, letter)):
        return Extraction(None, "none_ambiguous")
    return _decided((letter, hit.method), valid)


def extract_answer(
    choices: Mapping[str, str], response: str, *, finish_reason: str | None = None
) -> Extraction:
    """The single letter ``response`` committed to among ``choices``, or ``None``; never a guess."""
    truncated = finish_reason == "length"
    visible = strip_think(response) if response else ""
    if not visible:
        return _TRUNCATED if truncated else _EMPTY
    text = normalize(visible)
    index = option_index(tuple((str(k).strip().upper(), v) for k, v in choices.items()))
    valid = index.letters

    lower = lower_same_length(text)
    if len(text) <= 8 and (bare := _BARE.fullmatch(text)) is not None:  # "C", "(C)", "C." need no phrase search
        return _decided((bare.group(1).upper(), "lone_letter"), valid)
    # The last commitment is nearly always near the end: look there first, then before it.
    cut = len(text) - _TAIL_CHARS if len(text) > _TAIL_CHARS + 150 else 0
    firm = find_commitments(text, lower, index, cut)
    # The head is read too when the tail has nothing, or repeats itself (a loop may have begun earlier);
    # one final answer after a long chain of thought is read from the tail alone.
    repeats = sum(1 for h in firm if h.tier == STRONG) > 1
    earlier = find_commitments(text, lower, index, 0, cut) if cut and (repeats or not firm) else []
    if not firm:
        firm, earlier = earlier, []
    if truncated:  # a cut-off "Therefore, C" may have gone on "… is wrong": only finished sentences count
        firm = [h for h in firm if not h.whole_reply and (h.tier == STRONG or text[h.end:].strip())]
    if firm:
        # "The answer is A. … B. … A.", anywhere in the reply: a loop, not a self-correction
        stated = [h.letters[0] for h in (*earlier, *firm) if h.tier == STRONG and len(h.letters) == 1]
        if goes_round(_opening_answer(text, choices) + stated):
            return Extraction(None, "none_ambiguous")
        return _resolve(firm[-1], valid, text, index)
    if truncated:  # cut off: only a finished "<option text> is the most appropriate choice" still stands
        named = named_as_answer(lower, index)
        return _decided(named, valid) if named is not None and named[0] is not None else _TRUNCATED
    if (line := _letter_line(text, index)) is not None:
        return _decided(line, valid)
    if weak := find_commitments(text, lower, index, weak=True):
        return _resolve(weak[-1], valid, text, index)
    # verdicts decide only when no final answer follows them (one we could not read is no licence to guess)
    judged, rejected = judge_options(text, lower, valid)
    if judged is not None:
        return Extraction(*judged)
    refusals = matches(_REFUSAL, lower, _REFUSAL_ANCHORS)
    if any(not (m.start() and "a" <= lower[m.start() - 1] <= "z") for m in refusals):  # "i can't", not "hi can't"
        return Extraction(None, "none_refusal")
    return _decided(by_option_text(text, index, rejected), valid)


__all__ = ["METHODS", "Extraction", "extract_answer", "strip_think"]
