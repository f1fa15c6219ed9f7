"""Option-by-option verdicts: "A is incorrect … C is correct …", "A 错误 … C 正确".

Every verdict is an event (position, letter, polarity); the last verdict on a letter stands.
A letter is read only when exactly one option ends up judged correct.

>>> judge_options(verdict_map("A is incorrect. B is incorrect. C is correct. D is wrong."), frozenset("ABCD"))
('C', 'verdict')
"""

from __future__ import annotations

import re

from anesbench.grading._final import ref_ok

_NEG_EN = (r"incorrect|wrong|not[ \t]+(?:the[ \t]+)?(?:correct|right|best|answer|most[ \t]+appropriate)"
           r"|ruled[ \t]+out|eliminated?|excluded?")
_POS_EN = r"correct(?![ \t]+(?:the|a|an|this|it|its|any|for)[ \t])|right(?=[ \t]*[.,;:!)]|[ \t]+(?:answer|choice|option))"
_NEG_ZH = r"不正确|错误|不对|不是正确|不选|排除|不符合|(?<!不)错(?![过开])"
_POS_ZH = r"(?<!是否)正确|(?<![不相针绝面反])对(?=[ \t]*(?:[。.,，;；!！)]|$))|当选"
_NEG_MARK = r"✗|✘|❌|×"
_POS_MARK = r"✓|✔|✅|√"
POLARITY = re.compile(
    rf"(?P<neg>(?<![A-Za-z])(?:{_NEG_EN})(?![A-Za-z])|{_NEG_ZH}|{_NEG_MARK})"
    rf"|(?P<pos>(?<![A-Za-z])(?<!to[ \t])(?:{_POS_EN})(?![A-Za-z])|{_POS_ZH}|{_POS_MARK})",
    re.I | re.M,
)
#: an option label at the start of a line: "A.", "(B)", "Option C:", "- D)", "选项A：", "A项", "A 错误"
_LABEL = re.compile(
    r"^[ \t>*\-•·+]*(?:\d+[.)][ \t]*)?(?:option|choice|选项)?[ \t]*[(\[]?(?P<l>(?-i:[A-H]))(?![A-Za-z0-9])[)\]]?"
    r"[ \t]*(?:选项|项)?[ \t]*(?:[.:)\-–—、,(]|(?=[ \t]*[\u4e00-\u9fff]))",
    re.I | re.M,
)
_INLINE_EN = re.compile(
    r"(?:(?<![A-Za-z])(?:option|choice)[ \t]+)?(?<![A-Za-z0-9])[(\[]?(?P<l>(?-i:[A-H]))[)\]]?(?![A-Za-z0-9])"
    r"(?:[ \t]*\([^()\n]{1,60}\))?[ \t]*(?::|,|[ \t]is|[ \t]would[ \t]be|[ \t]seems)[ \t]+"
    rf"(?:(?:also|clearly|definitely|therefore|thus|then|obviously)[ \t]+)?(?:(?P<neg>{_NEG_EN})|(?P<pos>{_POS_EN}))"
    r"(?![A-Za-z])",
    re.I,
)
_INLINE_ZH = re.compile(
    r"(?<![A-Za-z0-9])(?P<l>[A-H])(?![A-Za-z0-9])[ \t]*(?:选项|项)?[ \t]*:?[ \t]*(?:说法|描述|叙述)?[ \t]*"
    rf"(?:是|为|也|亦|均|则)?[ \t]*(?:(?P<neg>{_NEG_ZH})|(?P<pos>{_POS_ZH}))"
)
#: "not C", "rule out B", "不选C", "排除A": a negative verdict on a letter named after the negation
_NEGATED = re.compile(
    r"(?:(?<![A-Za-z])(?:not|isn't|rule[ \t]+out|ruling[ \t]+out|exclude|excluding|eliminate|rather[ \t]+than)[ \t]+"
    r"(?:option[ \t]+|choice[ \t]+)?|不选|不是|排除|而非)[ \t]*(?:选项)?[(\[]?(?P<l>(?-i:[A-H]))[)\]]?(?![A-Za-z0-9])",
    re.I,
)
_SEGMENT_END = re.compile(r"\n[ \t]*\n")


def _events(text: str) -> list[tuple[int, str, bool]]:
    """(position, letter, judged correct) for every verdict in ``text``."""
    events: list[tuple[int, str, bool]] = []
    labels = list(_LABEL.finditer(text))
    for i, m in enumerate(labels):
        stop = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        gap = _SEGMENT_END.search(text, m.end(), stop)
        if gap is not None:
            stop = gap.start()
        pol = POLARITY.search(text, m.end(), stop)
        if pol is not None:
            events.append((m.start(), m.group("l"), pol.group("pos") is not None))
    for rx in (_INLINE_EN, _INLINE_ZH):
        for m in rx.finditer(text):
            if ref_ok(text, m.start("l")):
                events.append((m.start("l"), m.group("l"), m.group("pos") is not None))
    for m in _NEGATED.finditer(text):
        events.append((m.start("l"), m.group("l"), False))
    events.sort(key=lambda e: e[0])
    return events


def verdict_map(text: str) -> dict[str, bool]:
    """The standing verdict on each letter judged in ``text`` (True = judged correct).

    >>> verdict_map("A is correct. Wait, no: A is wrong, not B either.")
    {'A': False, 'B': False}
    """
    last: dict[str, bool] = {}
    for _, letter, positive in _events(text):
        last[letter] = positive
    return last


def judge_options(last: dict[str, bool], valid: frozenset[str]) -> tuple[str | None, str] | None:
    """``(letter, "verdict")`` when exactly one option is judged correct, ``(None, "none_ambiguous")``
    when several are, ``None`` when no option is judged correct (``last`` from :func:`verdict_map`).

    >>> judge_options(verdict_map("A 错误，C 正确，D 也正确"), frozenset("ABCD"))
    (None, 'none_ambiguous')
    """
    winners = [letter for letter, positive in last.items() if positive and letter in valid]
    if len(winners) == 1:
        return winners[0], "verdict"
    if len(winners) > 1:
        return None, "none_ambiguous"
    return None
