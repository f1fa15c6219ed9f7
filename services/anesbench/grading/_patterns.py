"""The pattern fragments the rule table (``_rules.py``) is written in, and the vetting patterns.

Patterns run on the *lower-cased* normalized text (``re.IGNORECASE`` costs 4-5x) and are tried
only at the offsets of literal anchors (:func:`matches`), so none starts with a look-behind: CPython's
regex engine has no fast skip for a pattern whose first character is a common letter (or that starts
with a look-behind), so scanning a 2 kB reply with such a pattern costs ~50 µs, while ``str.find`` of
a few literal anchors plus ``pattern.match`` at the hits costs ~1 µs.

>>> re.match(GRP, "(c) or d").group("grp")
'(c) or d'
>>> [m.group() for m in matches(re.compile(r"so[ ,]+[a-h]\\b"), "also, so c.", ("so",))]
['so c']
"""

from __future__ import annotations

import re

M = re.MULTILINE
#: one letter, maybe bracketed (case and the English word "a" are vetted later)
ONE = r"(?:[(\[][ \t]*)?[a-h](?![a-z0-9])(?:[ \t]*[)\]])?"
_JOIN = r"(?:,|、|/|&|\+|\bor\b|\band\b|和|或者|或|以及|及|与)"
#: one letter or several joined by "or" / "and" / "、" (several distinct letters = ambiguous)
GRP = rf"(?P<grp>{ONE}(?:[ \t]*{_JOIN}[ \t]*(?:option[ \t]+|choice[ \t]+|选项)?{ONE}){{0,7}})"
SINGLE = rf"(?P<grp>{ONE})"
#: what may follow a bare letter for it to end a sentence ("Therefore, C." but not "C is wrong")
END = r"(?=[ \t]*(?:[.!;。！；]|$|\n|[-–—:][ \t]|\(|,[ \t]*(?:which|as|because|since)\b))"
ZH_END = r"(?:项|选项)?(?=[ \t]*(?:[.!;,。！；，]|$|\n))"
ADV = (r"(?:(?:therefore|thus|actually|clearly|definitely|indeed|then|still|now|obviously|probably|"
       r"most[ \t]+likely|likely|in[ \t]+fact|simply|undoubtedly|certainly|really|either)[ \t,]+)*")

#: a hypothetical ("if the answer were A", "A would be the answer if …") is not a commitment
HYPOTHETICAL_BEFORE = re.compile(r"(?:^|[^a-z])(?:if|whether|unless|suppose|supposing|assuming)[ \t][^.;:!?,\n]*$")
HYPOTHETICAL_AFTER = re.compile(r"[ \t,]+(?:if|when|unless|only[ \t]+if|provided|in[ \t]+case)(?![a-z])")
#: what may not come right before a Chinese commitment word ("不选A", "如果选A", "并不是A")
ZH_NOT_BEFORE = ("不", "不应", "不能", "不会", "不该", "不要", "别", "如果", "若", "假如", "假设", "可", "可以", "是否",
               "不是", "并非", "比", "于")

#: letters inside a boxed / JSON / tag value (original case): "C", "(C)", "C. Dantrolene", "A, C", ["B"]
VALUE_LETTERS = re.compile(
    r"^[\s\"'\[(]*(?P<grp>[A-Ha-h](?:[\s\"',、/)]*(?:and|or|和|或|与)?[\s\"',(]*[A-H]){0,7})(?![A-Za-z0-9])"
)
#: a letter in an original-case span
LETTER = re.compile(r"(?<![A-Za-z])[A-Ha-h](?![A-Za-z])")

# ---------------------------------------------------------------- vetting (lower-cased text)
#: a letter put as a question ("答案是B吗？", "The answer is B?") is not a commitment
QUESTIONED = re.compile(r"[ \t]*(?:项|选项)?[ \t]*(?:吗|呢|\?|还是)")
#: the letter is one of a list ("B and C fit", "A、C最符合"): a pattern starting at a later letter of it
#: does not commit to that letter alone (original case; searched in the characters before the letter)
JOINED_BEFORE = re.compile(
    r"(?<![A-Za-z])[A-H][)\]]?[ \t]*(?:,|、|/|&|\+|和|与|及|或者|或|and|or)[ \t]*(?:[Oo]ption[ \t]+|选项)?[(\[]?[ \t]*\Z"
)
#: the word before an answer noun that turns it around ("the wrong answer is A")
NEG_ADJ = re.compile(r"(?:wrong|incorrect|false|worst|not|n't|least[ \t]+correct)[ \t]+(?:[a-z]+[ \t]+)?$")
#: right after the letter, a verdict that cancels the commitment ("Answer: C is incorrect because …",
#: "答案A项错误" is an analysis, not an answer)
NEG_AFTER = re.compile(
    r"[ \t]*(?:项|选项)?[ \t]*(?:是|说法|描述)?(?:错误|错|不正确|不对|不是|不选|排除|也不)"
    r"|[ \t]*(?:is|are|was|would[ \t]+be)(?:n't|[ \t]+(?:not|incorrect|wrong|false|unlikely))(?![a-z])"
)
#: a refusal; tried at :data:`REFUSAL_ANCHORS` only (the caller checks the character before "i"/"as")
REFUSAL_ANCHORS = ("i ", "i'", "as an", "无法", "不能", "不便", "没法", "不可以", "作为")
REFUSAL = re.compile(
    r"i[ \t]*(?:cannot|can(?:'|no)t|am[ \t]+(?:not[ \t]+able|unable)|'m[ \t]+(?:not[ \t]+able|unable)"
    r"|won't|will[ \t]+not|must[ \t]+decline|do[ \t]+not[ \t]+feel[ \t]+comfortable|'m[ \t]+not[ \t]+comfortable)"
    r"[ \t]+(?:to[ \t]+)?(?:provide|give|offer|answer|help|assist|recommend|make|choose|select|pick|determine"
    r"|diagnose|respond|comply)"
    r"|as[ \t]+an[ \t]+ai(?![a-z])"
    r"|(?:无法|不能|不便|没法|不可以)(?:回答|提供|作答|给出|推荐|选择|判断|确定唯一|帮助|协助)"
    r"|作为(?:一个)?(?:ai|人工智能)"
)


def anchor_positions(
    lower: str, anchors: tuple[str, ...], start: int = 0, stop: int | None = None
) -> dict[str, list[int]]:
    """For each of ``anchors`` that occurs in ``[start, stop)``, the offsets where it begins
    (one pass for a whole table of patterns; absent anchors are left out).

    >>> anchor_positions("so also so", ("so", "is"))
    {'so': [0, 5, 8]}
    """
    end = len(lower) if stop is None else stop
    out: dict[str, list[int]] = {}
    for a in anchors:
        limit = end + len(a) - 1
        i = lower.find(a, start, limit)
        if i == -1:
            continue
        found = out[a] = []
        while i != -1:
            found.append(i)
            i = lower.find(a, i + 1, limit)
    return out


def matches(
    pattern: re.Pattern[str], lower: str, anchors: tuple[str, ...], start: int = 0, stop: int | None = None
) -> list[re.Match[str]]:
    """``pattern.match`` at every anchor offset in ``[start, stop)`` that matches (in text order;
    matches may overlap and may run past ``stop``).

    >>> [m.start() for m in matches(re.compile(r"not \\w"), "not a, not b", ("not",))]
    [0, 7]
    """
    positions = anchor_positions(lower, anchors, start, stop).values()
    found = (pattern.match(lower, i) for i in sorted({i for ps in positions for i in ps}))
    return [m for m in found if m is not None]
