"""The ordered strategy: which evidence decides the answer, and when the grader gives up.

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

>>> extract_answer({"A": "Propofol", "B": "Dantrolene"}, "Initially A, but the answer is B.")
Extraction(pred='B', method='final_answer_phrase')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from anesbench.grading._final import Hit, find_commitments, lower_same_length
from anesbench.grading._lines import letter_line
from anesbench.grading._normalize import normalize, strip_think
from anesbench.grading._option_text import (
    OptionIndex,
    by_option_text,
    goes_round,
    mentions,
    named_as_answer,
    option_index,
)
from anesbench.grading._patterns import REFUSAL, REFUSAL_ANCHORS, matches
from anesbench.grading._rules import STRONG
from anesbench.grading._verdicts import final_answer_after, judge_options, standing_verdicts

#: Every method :func:`anesbench.grading.extract_answer` can return. It is a Prometheus label,
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
    """The letter a reply committed to (``None`` for no answer) and the method that decided it.

    >>> Extraction(None, "none_refusal")
    Extraction(pred=None, method='none_refusal')
    """

    pred: str | None
    method: str


_EMPTY = Extraction(None, "none_empty")
_TRUNCATED = Extraction(None, "none_truncated")
_TAIL_CHARS = 300  # searched first; the rest only if the tail holds no commitment
_BARE = re.compile(r"[ \t]*[(\[]?[ \t]*([A-Ha-h])[ \t]*[)\]]?[ \t]*[.。:!]?[ \t]*")


# A line that is one option as the question gave it ("A. 0.1 mmol/L"); at the reply's start, alone, it is
# the reply's first stated answer.
_OPTION_LINE = re.compile(r"(?m)^[ \t]*\(?([A-H])[.)][ \t]+([^\n]*?)[ \t.。]*$")
_SENTENCE = re.compile(r"[^\n。!?]*?(?=[.!?](?:\s|$)|[。!?\n]|$)")


def _opening_answer(text: str, choices: Mapping[str, str]) -> str | None:
    r"""The letter of a reply that opens with one option line and lists no other: its first answer.

    >>> _opening_answer("A. 0.1 mmol/L\n\nThe answer is D.", {"A": "0.1 mmol/L", "D": "4"})
    'A'
    >>> _opening_answer("A. 0.1 mmol/L\nB. 0.5 mmol/L", {"A": "0.1 mmol/L", "B": "0.5 mmol/L"}) is None
    True
    """
    lines = list(_OPTION_LINE.finditer(text))
    if len(lines) != 1 or lines[0].start() != 0:
        return None
    letter, said = lines[0].group(1), lines[0].group(2)
    return letter if str(choices.get(letter, "")).strip().lower().rstrip(".。") == said.lower() else None


def _text_after(text: str, hit: Hit, index: OptionIndex) -> str | None:
    """The letter of another option the sentence right after the committed letter names instead:
    its exact text ("答案是C。在任何通气之前…手术。" where that is B's text), or its text as the
    sentence's subject when the committed option's own text is not named and that other is not
    negated ("答案是C。顺阿曲库铵的作用时间受影响最小。" where that is D's).

    >>> from anesbench.grading._option_text import option_index
    >>> _text_after("答案是C。氯胺酮。", Hit(3, ("C",), "final_answer_phrase", 0, 4), option_index((("B", "氯胺酮"),)))
    'B'
    """
    if hit.end < 0:
        return None
    at = hit.end
    while at < len(text) and text[at] in " \t.。:)]、,-–—":
        at += 1
    m = _SENTENCE.match(text, at)
    sentence = (m.group() if m else "").strip().lower().rstrip(" \t.。")
    if not sentence:
        return None
    if index.is_text_of(hit.letters[0], sentence):  # its own text (twins of other options included)
        return None
    for letter in sorted(index.letters):
        if index.is_text_of(letter, sentence):
            return letter
    # "答案是C。顺阿曲库铵的作用时间…最小…" (D's text as the subject, C's never named): the text disagrees
    hits = index.find_all(sentence)
    named = mentions(sentence, index)
    if hits and hits[0][0] == 0:
        first = index.letter_of[hits[0][2]]
        if first != hit.letters[0] and first in named and hit.letters[0] not in named:
            return first
    return None


def _resolve(hit: Hit, valid: frozenset[str], text: str = "", index: OptionIndex | None = None) -> Extraction:
    """The extraction a commitment stands for: its letter, or why it gives none (several letters;
    not an option; the letter followed by another option's exact text).

    >>> _resolve(Hit(0, ("A", "C"), "final_answer_phrase", 0), frozenset("ABCD")).method
    'none_ambiguous'
    """
    if len(hit.letters) > 1:
        return Extraction(None, "none_ambiguous")
    letter = hit.letters[0]
    if letter not in valid:
        return Extraction(None, "none_invalid_choice")
    if index is not None and _text_after(text, hit, index) not in (None, letter):
        return Extraction(None, "none_ambiguous")
    return Extraction(letter, hit.method)


def _decided(pair: tuple[str | None, str], valid: frozenset[str]) -> Extraction:
    """``(letter, method)`` as an extraction, refusing letters that are not options.

    >>> _decided(("E", "lone_letter"), frozenset("ABCD"))
    Extraction(pred=None, method='none_invalid_choice')
    """
    letter, method = pair
    if letter is not None and letter not in valid:
        return Extraction(None, "none_invalid_choice")
    return Extraction(letter, method)


def extract_answer(
    choices: Mapping[str, str], response: str, *, finish_reason: str | None = None
) -> Extraction:
    """The single letter ``response`` committed to among ``choices``, or ``None``; never a guess.

    >>> extract_answer({"A": "x", "B": "y"}, "<think>A? no</think>", finish_reason="stop")
    Extraction(pred=None, method='none_empty')
    """
    truncated = finish_reason == "length"
    visible = strip_think(response) if response else ""
    if not visible:
        return _TRUNCATED if truncated else _EMPTY
    text = normalize(visible)
    index = option_index(tuple((str(k).strip().upper(), v) for k, v in choices.items()))
    valid = index.letters

    lower = lower_same_length(text)
    if len(text) <= 8:  # "C", "(C)", "C." need no phrase search
        bare = _BARE.fullmatch(text)
        if bare is not None:
            return _decided((bare.group(1).upper(), "lone_letter"), valid)
    # The last commitment is nearly always near the end: look there first, then before it.
    cut = len(text) - _TAIL_CHARS if len(text) > _TAIL_CHARS + 150 else 0
    firm = find_commitments(text, index, cut, None, lower)
    # The head is read too when the tail has nothing, or repeats itself (a loop may have begun earlier);
    # one final answer after a long chain of thought is read from the tail alone.
    repeats = sum(1 for h in firm if h.tier == STRONG) > 1
    earlier = find_commitments(text, index, 0, cut, lower) if cut and (repeats or not firm) else []
    if not firm:
        firm, earlier = earlier, []
    if truncated:  # a cut-off "Therefore, C" may have gone on "… is wrong": only finished sentences count
        firm = [h for h in firm if not h.whole_reply and (h.tier == STRONG or text[h.end:].strip())]
    if firm:
        # "The answer is A. … B. … A.", anywhere in the reply: a loop, not a self-correction
        opening = _opening_answer(text, choices)
        stated = [h.letters[0] for h in (*earlier, *firm) if h.tier == STRONG and len(h.letters) == 1]
        if goes_round(([opening] if opening else []) + stated):
            return Extraction(None, "none_ambiguous")
        return _resolve(firm[-1], valid, text, index)
    if truncated:  # cut off: only a finished "<option text> is the most appropriate choice" still stands
        named = named_as_answer(lower, index)
        return _decided(named, valid) if named is not None and named[0] is not None else _TRUNCATED
    line = letter_line(text, index)
    if line is not None:
        return _decided(line, valid)
    weak = find_commitments(text, index, 0, None, lower, weak=True)
    if weak:
        return _resolve(weak[-1], valid, text, index)
    standing = standing_verdicts(text, lower)
    judged = judge_options(standing, valid)
    # verdicts decide only when no final answer follows them (one we could not read is no licence to guess)
    if judged is not None and not (judged[0] is not None and final_answer_after(lower, standing[judged[0]][1])):
        return _decided(judged, valid)
    refusals = matches(REFUSAL, lower, REFUSAL_ANCHORS)
    if any(not (m.start() and "a" <= lower[m.start() - 1] <= "z") for m in refusals):  # "i can't", not "hi can't"
        return Extraction(None, "none_refusal")
    rejected = frozenset(letter for letter, (positive, _) in standing.items() if positive is False)
    return _decided(by_option_text(text, index, rejected), valid)


__all__ = ["METHODS", "Extraction", "extract_answer"]
