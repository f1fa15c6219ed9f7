"""Find every explicit final-answer construct in a normalized reply, vetted, in text order.

A :class:`Hit` is one commitment: where it is, the letters it names (several distinct ones make
it ambiguous), the method name and a strength tier. Callers take the last one (self-corrections).

>>> [h.letters for h in find_commitments("Answer: A. Wait, no. The answer is C.", None)]
[('A',), ('C',)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anesbench.grading import _patterns as P
from anesbench.grading._option_text import OptionIndex, mentions

STRONG, MEDIUM, WEAK = 0, 1, 2
_LOWER, _PREADJ, _HEADER, _REF, _BETWEEN, _ZHNEG = 1, 2, 4, 8, 16, 32

#: (pattern, method, tier, checks, needles: run only if one of them is in the lower-cased text)
_SPECS: tuple[tuple[re.Pattern[str], str, int, int, tuple[str, ...]], ...] = (
    (P.EN_ANSWER, "final_answer_phrase", STRONG, _LOWER | _PREADJ | _HEADER, ("answer", "option", "choice", "selection")),
    (P.EN_LETTER_FIRST, "final_answer_phrase", STRONG, _REF | _BETWEEN, ("answer", "option", "choice")),
    (P.EN_BOTH, "final_answer_phrase", STRONG, _REF, (" are ", " be ")),
    (P.EN_CHOOSE, "final_answer_phrase", STRONG, _LOWER, ("choose", "select", "pick", "go with", "opt for", "mark",
                                                           "circle", " to ")),
    (P.EN_NOT_BUT, "final_answer_phrase", STRONG, 0, ("but",)),
    (P.EN_ITS, "conclusion", MEDIUM, 0, ("it", "that")),
    (P.EN_CONCLUSION, "conclusion", MEDIUM, 0, ("therefore", "thus", "hence", "so", "consequently", "accordingly",
                                               "conclusion", "summary", "overall", "ultimately", "finally")),
    (P.DASH_END, "conclusion", MEDIUM, 0, ("-", "–", "—", ":", "→", "=>")),
    (P.EN_IS_LETTER, "conclusion", WEAK, _REF, ("is",)),
    (P.ZH_ANSWER, "final_answer_phrase", STRONG, _LOWER | _ZHNEG, ("答",)),
    (P.ZH_CHOOSE, "final_answer_phrase", STRONG, _LOWER | _ZHNEG, ("选",)),
    (P.ZH_LETTER_FIRST, "final_answer_phrase", STRONG, _REF, ("答案", "选项")),
    (P.ZH_BOTH, "final_answer_phrase", STRONG, _REF, ("正确", "对")),
    (P.ZH_CORRECT_IS, "final_answer_phrase", STRONG, _LOWER | _ZHNEG, ("正确", "最佳", "最合适", "最恰当")),
    (P.ZH_CORRECTION, "final_answer_phrase", STRONG, 0, ("正", "改")),
    (P.ZH_NOT_BUT, "conclusion", MEDIUM, 0, ("而是",)),
    (P.ZH_SHOULD, "conclusion", MEDIUM, _ZHNEG, ("应",)),
    (P.ZH_CONCLUSION, "conclusion", MEDIUM, 0, ("所以", "因此", "因而", "故", "综上", "总之", "可见", "最终")),
    (P.ZH_IS_LETTER, "conclusion", WEAK, _REF, ("是",)),
)
_STRUCTURED: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (P.BOXED, "boxed", "\\boxed"), (P.JSON, "json", ":"), (P.TAG, "answer_tag", "<answer>"),
)
_ALLOWED_BEFORE = frozenset(
    "option options choice choices answer answers letter so thus therefore hence then and or but that believe think"
    " why because since clearly definitely actually only maybe perhaps however whereas while now conclude i is was"
    " hmm yes no ok okay well both either pick choose select".split()
)
_ZH_DENY_BEFORE = ("维生素", "因子", "蛋白", "肝炎", "病毒")
_ZH_DENY_AFTER = "型类族组级"
_NOT_TEXT_START = " \t.):-–—"


@dataclass(frozen=True, slots=True)
class Hit:
    """One vetted commitment. ``letters`` are upper-case, unique, in order of appearance."""

    pos: int
    letters: tuple[str, ...]
    method: str
    tier: int


def _letters(group: str) -> tuple[str, ...]:
    """Upper-case unique letters of a captured group ("A or c" → ("A", "C")).

    >>> _letters("(B) and C")
    ('B', 'C')
    """
    return tuple(dict.fromkeys(ch.upper() for ch in P.LETTER.findall(group)))


def ref_ok(text: str, i: int) -> bool:
    """Whether the letter at ``text[i]`` can be an option reference (not "Vitamin A", "A型").

    >>> ref_ok("Vitamin A is the answer", 8), ref_ok("So A is the answer", 3)
    (False, True)
    """
    if i + 1 < len(text) and text[i + 1] in _ZH_DENY_AFTER:
        return False
    j = i
    while j > 0 and text[j - 1] in " \t([":
        j -= 1
    if j == 0:
        return True
    ch = text[j - 1]
    if ch.isascii() and ch.isalpha():
        k = j - 1
        while k > 0 and text[k - 1].isascii() and (text[k - 1].isalpha() or text[k - 1] == "'"):
            k -= 1
        return text[k:j].lower() in _ALLOWED_BEFORE
    if ch == "-" and j >= 2 and text[j - 2].isalnum():
        return False
    if "\u4e00" <= ch <= "\u9fff":
        return not text[max(0, j - 3):j].endswith(_ZH_DENY_BEFORE)
    return True


def _lower_ok(text: str, end: int, letter: str) -> bool:
    """A lower-case letter counts only where the English word "a" (or "e.g.") cannot be meant."""
    after = text[end:end + 2]
    if letter == "a":
        return after == "" or after[0] in ".,;:!?)]。，；" and not after[1:2].isalpha()
    return not (after[:1] == "." and after[1:2].isalpha())


def _vet(text: str, m: re.Match[str], checks: int, index: OptionIndex | None) -> tuple[str, ...] | None:
    grp = m.group("grp")
    letters = _letters(grp)
    if not letters:
        return None
    first = P.LETTER.search(grp)
    assert first is not None
    ch, at = first.group(), m.start("grp") + first.start()
    if ch.islower() and not (checks & _LOWER and _lower_ok(text, m.end("grp"), ch)):
        return None
    if checks & _REF and not ref_ok(text, at):
        return None
    if checks & _PREADJ and P.NEG_ADJ.search(text, max(0, m.start() - 30), m.start()):
        return None
    if checks & _HEADER and "\n" in m.group("sep"):
        line = text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip(" \t:")
        if len(line) > 20 or "." in line:
            return None
    if checks & _BETWEEN and m.group("between") and not m.group("between").lstrip().startswith("("):
        named = m.group("between").lstrip(_NOT_TEXT_START).lower()
        if index is None or letters[0] not in mentions(named, index):
            return None
    if checks & _ZHNEG and P.ZH_NEG_AFTER.match(text, m.end("grp")):
        return None
    return letters


def _value_letters(value: str, index: OptionIndex | None) -> tuple[str, ...]:
    """Letters of a boxed / JSON / tag value, or the one option whose text it names."""
    m = P.VALUE_LETTERS.match(value)
    if m is not None:
        rest = value[m.end():].strip(" \t\"'.)]}")
        if not (m.group("grp")[0].islower() and rest and not rest[0] in ".:)-"):
            return _letters(m.group("grp"))
    if index is not None:
        named = tuple(dict.fromkeys(mentions(value.lower(), index)))
        if len(named) == 1:
            return named
    return ()


def find_commitments(text: str, index: OptionIndex | None) -> list[Hit]:
    """All vetted commitments in ``text`` (normalized), sorted by position.

    >>> [(h.letters, h.method) for h in find_commitments("最终答案：\\\\boxed{B}", None)]
    [(('B',), 'boxed')]
    """
    lower = text.lower()
    hits: list[Hit] = []
    for pattern, method, tier, checks, needles in _SPECS:
        if not any(n in lower for n in needles):
            continue
        for m in pattern.finditer(text):
            letters = _vet(text, m, checks, index)
            if letters:
                hits.append(Hit(m.start("grp"), letters, method, tier))
    for pattern, method, needle in _STRUCTURED:
        if needle not in lower:
            continue
        for m in pattern.finditer(text):
            letters = _value_letters(m.group("c"), index)
            if letters:
                hits.append(Hit(m.start(), letters, method, STRONG))
    hits.sort(key=lambda h: (h.pos, h.tier))
    return [h for i, h in enumerate(hits) if i == 0 or hits[i - 1].pos != h.pos]
