"""Replies whose first or last line is just the letter: "C", "(C)", "**C**", "C. Dantrolene".

A line that is one of several option-labelled lines (a restated option list or an option-by-option
analysis) does not count.

>>> from anesbench.grading._option_text import option_index
>>> letter_line("C. Dantrolene", option_index((("C", "Dantrolene"),)))
('C', 'letter_with_text')
"""

from __future__ import annotations

import re

from anesbench.grading._option_text import OptionIndex, mentions
from anesbench.grading._verdicts import POLARITY

_LINE = re.compile(
    r"^(?:(?:option|choice|answer|选项|答案)[ \t]*:?[ \t]*)?[(\[]?[ \t]*(?P<l>[A-Ha-h])[ \t]*[)\]]?(?![A-Za-z0-9])"
    r"[ \t]*(?P<sep>[.:。、,\-–—)])?[ \t]*(?P<rest>.*)$",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^[ \t]*(?:[-*•·+][ \t]*)?(?:(?:option|choice|选项)[ \t]*[(\[]?[A-H](?![A-Za-z0-9])"
    r"|[(\[]?[A-H][)\]]?[ \t]*(?:[.:)、(\-–—]|选项|项))",
    re.IGNORECASE,
)
_PUNCT = " \t.。!！:;,)]"


def _judge(line: str, index: OptionIndex, whole: bool) -> tuple[str | None, str] | None:
    """Judge one line: a bare letter, a letter and its option's text, a conflict, or nothing.

    >>> from anesbench.grading._option_text import option_index
    >>> _judge("(B)", option_index((("B", "Ketamine"),)), True)
    ('B', 'lone_letter')
    """
    m = _LINE.match(line)
    if m is None:
        return None
    letter = m.group("l")
    rest = m.group("rest").strip(_PUNCT)
    if not rest:
        if letter.islower() and not whole:
            return None
        return letter.upper(), "lone_letter"
    lower = rest.lower()
    if letter.isupper() and index.is_text_of(letter, lower):  # "B. 6%": too short to search for, but its own
        return letter, "letter_with_text"
    if letter.islower() or not index.longest_first:
        return None
    pol = POLARITY.search(lower)
    if pol is not None and pol.group("neg") is not None:  # "C. Dantrolene — Incorrect" is an analysis line
        return None
    start = 1 if lower[0] in "([" else 0
    if not index.match_at(lower, start):
        return None
    named = set(mentions(lower, index))
    if named == {letter}:  # "Option A, neostigmine, …; option B, sugammadex, …" names more than its own
        return letter, "letter_with_text"
    if named and letter not in named:
        return None, "none_ambiguous"
    return None


def letter_line(text: str, index: OptionIndex) -> tuple[str | None, str] | None:
    """``(letter, method)`` if the last or first line of ``text`` is a bare letter (+ its option
    text), ``(None, "none_ambiguous")`` if the letter and the text disagree, else ``None``.

    >>> from anesbench.grading._option_text import option_index
    >>> letter_line("A. Propofol\\nB. Ketamine", option_index((("A", "Propofol"), ("B", "Ketamine")))) is None
    True
    """
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if not lines:
        return None
    whole = len(lines) == 1
    for i in (len(lines) - 1, 0):
        neighbours = (lines[i - 1] if i > 0 else "", lines[i + 1] if i + 1 < len(lines) else "")
        if any(n and _LABEL.match(n) for n in neighbours):
            continue
        judged = _judge(lines[i], index, whole)
        if judged is not None:
            return judged
        if whole:
            break
    return None
