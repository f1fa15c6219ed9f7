"""Option-by-option verdicts: "A is incorrect … C is correct …", "A 错误 … C 正确".

Every verdict is an event (position, letter, polarity); the last verdict on a letter stands.
A letter is read only when exactly one option ends up judged correct. Verdicts come from
option-labelled lines ("B. Ketamine: incorrect") and from a letter right before a verdict word
("C is correct", "C 正确"); a letter named after a negation ("not C", "不选C") is judged wrong.

>>> t = "A is incorrect. B is incorrect. C is correct. D is wrong."
>>> judge_options(standing_verdicts(t, t.lower()), frozenset("ABCD"), t.lower())
('C', 'verdict')
"""

from __future__ import annotations

import re

from anesbench.grading._final import CAPITAL, matches, ref_ok

_NEG_EN = (r"incorrect|wrong|not[ \t]+(?:the[ \t]+)?(?:correct|right|best|answer|most[ \t]+appropriate)"
           r"|ruled[ \t]+out|eliminated?|excluded?")
_POS_EN = (r"correct(?![ \t]+(?:the|a|an|this|it|its|any)[ \t])"
           r"|right(?=[ \t]*(?:[.,;:!)\n]|$)|[ \t]+(?:answer|choice|option))")
_NEG_ZH = r"不正确|错误|不对|不是正确|不选|排除|不符合|错(?![过开])"
_POS_ZH = r"正确|对(?=[ \t]*(?:[。.,，;；!！)]|$))|当选|符合题意"
#: a verdict word (lower-cased text); group ``pos`` or ``neg`` says which way. No look-behinds
#: (they would disable the engine's first-character scan): :func:`polarities` makes those checks.
POLARITY = re.compile(
    rf"(?P<neg>(?:{_NEG_EN})(?![a-z])|{_NEG_ZH}|✗|✘|❌|×)|(?P<pos>(?:{_POS_EN})(?![a-z])|{_POS_ZH}|✓|✔|✅|√)",
    re.MULTILINE,
)
_POLARITY_ANCHORS = ("incorrect", "wrong", "not", "ruled", "eliminat", "exclud", "correct", "right", "不", "错",
                     "排除", "正确", "对", "当选", "符合题意", "✗", "✘", "❌", "×", "✓", "✔", "✅", "√")
_NEGATED_ANCHORS = ("not", "isn't", "rul", "exclud", "eliminat", "rather", "不选", "不是", "排除", "而非")
_NOT_BEFORE = {"正确": ("是否",), "对": tuple("不相针绝面反"), "错": ("不",), "correct": ("to ", "to\t")}
#: an English "correct"/"right" is a verdict only as a predicate ("C is correct", "C: correct"),
#: not as an attribute ("the correct drug is dantrolene") unless of the answer ("the correct answer")
_PREDICATIVE = re.compile(
    r"(?:^|[:\-–—(),.;!?\n]|(?<![a-z])(?:is|are|be|was|seems|appears|remains|looks|makes[ \t]+it|making[ \t]+it))[ \t]*"
    r"(?:(?:also|clearly|definitely|therefore|thus|indeed|probably|likely)[ \t]+)?\Z",
    re.MULTILINE,
)
_ATTRIBUTIVE_ZH = re.compile(r"的(?!选项|答案|选择)[\u4e00-\u9fff]")
_ANSWER_NOUN = re.compile(r"[ \t]+(?:answer|choice|option)(?![a-z])")


def polarities(lower: str, start: int = 0, stop: int | None = None) -> list[tuple[int, bool]]:
    """(position, is positive) of each verdict word in ``lower[start:stop]``.

    >>> polarities("b is incorrect; used to correct it; the correct drug is c; c is correct")
    [(5, False), (64, True)]
    """
    out: list[tuple[int, bool]] = []
    covered = -1
    for m in matches(POLARITY, lower, _POLARITY_ANCHORS, start, stop):
        s, word = m.start(), m.group()
        if s < covered:  # inside the verdict word before ("正确" in "不正确")
            continue
        if word[0].isascii() and word[0].isalpha() and s and "a" <= lower[s - 1] <= "z":
            continue
        key = "correct" if word.startswith("correct") else word
        bad = _NOT_BEFORE.get(key)
        if bad is not None and lower.endswith(bad, max(0, s - 3), s):
            continue
        positive = m.group("pos") is not None
        if word == "正确" and _ATTRIBUTIVE_ZH.match(lower, s + 2):  # "正确的治疗药物是…" describes, not judges
            continue
        if (
            positive
            and word[0] in "cri"
            and not _PREDICATIVE.search(lower, max(0, s - 30), s)
            and not (lower.endswith(("the ", "most "), 0, s) and _ANSWER_NOUN.match(lower, s + len(word)))
        ):
            continue
        out.append((s, positive))
        covered = m.end()
    return out


#: an option label at the start of a line: "A.", "(B)", "Option C:", "- D)", "选项A：", "A项", "A 错误"
_LABEL = re.compile(
    r"^[ \t>*\-•·+]*(?:\d+[.)][ \t]*)?(?:option|choice|选项)?[ \t]*[(\[]?(?P<l>[a-h])(?![a-z0-9])[)\]]?"
    r"[ \t]*(?:选项|项)?[ \t]*(?:[.:)\-–—、,(]|(?=[ \t]*[\u4e00-\u9fff]))",
    re.MULTILINE,
)
#: what sits between a letter and the verdict word that follows it ("C is ", "C (dantrolene): ", "C项")
_BEFORE_EN = re.compile(
    r"(?P<l>[a-h])[)\]]?(?![a-z0-9])(?:[ \t]*\([^()\n]{1,60}\))?[ \t]*(?::|,|[ \t]is|[ \t]would[ \t]be|[ \t]seems)"
    r"[ \t]+(?:(?:also|clearly|definitely|therefore|thus|then|obviously)[ \t]+)?\Z"
)
_BEFORE_ZH = re.compile(
    r"(?P<l>[a-h])(?![a-z0-9])[ \t]*(?:选项|项)?[ \t]*:?[ \t]*(?:说法|描述|叙述)?[ \t]*(?:也|亦|均|都|则)?(?:是|为)?[ \t]*\Z"
)
#: an option named inside a sentence, after a clause break: "…；B选项…", "…。选项C…", "…. Option D, …"
_CLAUSE_LABEL = re.compile(
    r"(?:^|[;。,.!?])[ \t]*(?P<body>(?:option[ \t]+|选项[ \t]*)[(\[]?(?P<l>[a-h])[)\]]?(?![a-z0-9])"
    r"|(?P<k>[a-h])[ \t]*(?:选项|项))",
    re.MULTILINE,
)
#: "not C", "rule out B", "不选C", "排除A": a negative verdict on a letter named after the negation
_NEGATED = re.compile(
    r"(?:(?:not|isn't|rule[ \t]+out|ruling[ \t]+out|exclude|excluding|eliminate|rather[ \t]+than)[ \t]+"
    r"(?:option[ \t]+|choice[ \t]+)?|不选|不是|排除|而非)[ \t]*(?:选项)?[(\[]?(?P<l>[a-h])[)\]]?(?![a-z0-9])"
)
#: "A: No. B: No. C: Yes." (yes/no only right after a letter and a colon or dash)
_YES_NO = re.compile(r"(?<![a-z0-9])(?P<l>[a-h])[)\]]?[ \t]*[:\-–—][ \t]*(?:(?P<pos>yes)|no)(?![a-z])")
#: a one-word verdict after a dash on a labelled line, maybe negated ("– Not indicated", "— Indicated")
_DASH_VERDICT = re.compile(r"[-–—][ \t]*(?P<not>not[ \t]+)?(?P<w>[a-z]+)(?![a-z])")
_SEGMENT_END = re.compile(r"\n[ \t]*\n")


def standing_verdicts(text: str, lower: str) -> dict[str, tuple[bool | None, int]]:
    """The standing (last) verdict on each letter judged in ``text`` (True = judged correct, None =
    both ways) and where that verdict was given.

    >>> t = "A is correct. Wait, no: A is wrong, not B either."
    >>> standing_verdicts(t, t.lower())
    {'A': (False, 24), 'B': (False, 40)}
    """
    events: list[tuple[int, str, bool | None]] = []
    contrasts: list[tuple[int, str, bool, str]] = []
    labels = [(m.start("l"), m.start(), m.end()) for m in _LABEL.finditer(lower) if text[m.start("l")].isupper()]
    for m in _CLAUSE_LABEL.finditer(lower):
        group = "l" if m.group("l") is not None else "k"
        if text[m.start(group)].isupper():
            labels.append((m.start(group), m.start("body"), m.end()))
    labels = sorted({label[0]: label for label in sorted(labels, reverse=True)}.values())  # one per letter offset
    for i, (at, _, end) in enumerate(labels):
        stop = labels[i + 1][1] if i + 1 < len(labels) else len(lower)
        gap = _SEGMENT_END.search(lower, end, stop)
        if gap is not None:
            stop = gap.start()
        for cap in CAPITAL.finditer(text, end, stop):  # "选项A、B、C中…": the verdict is not A's
            if ref_ok(text, cap.start()):
                stop = cap.start()
                break
        found = {positive for _, positive in polarities(lower, end, stop)}
        if found:  # a segment that says both ("correct in children, wrong here") judges nothing for sure
            events.append((at, text[at], found.pop() if len(found) == 1 else None))
        elif (dash := _DASH_VERDICT.search(lower, end, stop)) is not None:
            contrasts.append((at, text[at], dash.group("not") is not None, dash.group("w")))
    negated_words = {word for _, _, negated, word in contrasts if negated}
    for at, letter, negated, word in contrasts:  # "A. X – Not indicated … C. Y – Indicated": the contrast judges
        if word in negated_words:
            events.append((at, letter, not negated))
    for s, positive in polarities(lower):
        for cap in reversed(list(CAPITAL.finditer(text, max(0, s - 90), s))):
            at = cap.start()
            if (_BEFORE_EN.match(lower, at, s) or _BEFORE_ZH.match(lower, at, s)) and ref_ok(text, at):
                events.append((at, text[at], positive))
                break
    for m in matches(_NEGATED, lower, _NEGATED_ANCHORS):
        at = m.start("l")
        if text[at].isupper() and not (m.group()[0].isascii() and m.start() and "a" <= lower[m.start() - 1] <= "z"):
            events.append((at, text[at], False))
    if "yes" in lower:
        for m in _YES_NO.finditer(lower):
            if text[m.start("l")].isupper():
                events.append((m.start("l"), text[m.start("l")], m.group("pos") is not None))
    events.sort(key=lambda e: (e[0], e[2] is None))  # a two-way segment outweighs "B is correct" in it
    return {letter: (positive, at) for at, letter, positive in events}


#: a final-answer phrase; one that comes after the verdicts decides, not they, even if unread
_FINAL_HEAD = re.compile(r"(?:answer|choice)[ \t]+(?:is|would[ \t]+be|should[ \t]+be)(?![a-z])|answer[ \t]*:|答案")


def judge_options(
    standing: dict[str, tuple[bool | None, int]], valid: frozenset[str], lower: str
) -> tuple[str | None, str] | None:
    """``(letter, "verdict")`` when exactly one option is judged correct, none both ways, and no
    final-answer phrase follows that verdict ("… C is correct. The answer is: 10 mg/kg");
    ``(None, "none_ambiguous")`` when several are (or one is judged both ways); else ``None``."""
    last = {letter: positive for letter, (positive, _) in standing.items() if letter in valid}
    winners = [letter for letter, positive in last.items() if positive]
    if len(winners) == 1 and None not in last.values():
        return None if _FINAL_HEAD.search(lower, standing[winners[0]][1]) else (winners[0], "verdict")
    return (None, "none_ambiguous") if winners else None
