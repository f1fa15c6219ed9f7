"""Find every explicit final-answer construct in a normalized reply, vetted, in text order.

The constructs are the rules of ``_rules.py``; this module runs them at their anchors and makes
the checks each rule names. A :class:`Hit` is one commitment: where it is, the letters it names
(several distinct ones make it ambiguous), the method name and a strength tier. Callers take the
last one (self-corrections).

>>> from anesbench.grading._normalize import option_index
>>> t = "Answer: A. Wait, no. The answer is C."
>>> [h.letters for h in find_commitments(t, t.lower(), option_index(()))]
[('A',), ('C',)]
"""

from __future__ import annotations

import re
from typing import NamedTuple

from anesbench.grading import _rules as R
from anesbench.grading._normalize import OptionIndex, mentions

#: a capital that may be an option letter (not the start of a word)
CAPITAL = re.compile(r"[A-H](?![A-Za-z0-9])")
#: every anchor of the non-Chinese / of all rules, each searched once per reply
_VALUE_RULES = tuple(r for r in R.RULES if r.value)
_PHRASE_RULES = tuple(r for r in R.RULES if not r.value)
_EN_ANCHORS = tuple(sorted({a for r in _PHRASE_RULES if not r.checks & R.ZH_ONLY for a in r.anchors}))
_ALL_ANCHORS = tuple(sorted({a for r in _PHRASE_RULES for a in r.anchors}))
#: words after which a capital letter can still be an option reference ("so C is the answer")
_ALLOWED_BEFORE = frozenset((
    "option", "options", "choice", "choices", "answer", "answers", "letter", "so", "thus", "therefore", "hence",
    "then", "and", "or", "but", "that", "believe", "think", "why", "because", "since", "clearly", "definitely",
    "actually", "only", "maybe", "perhaps", "however", "whereas", "while", "now", "conclude", "i", "is", "was",
    "hmm", "yes", "no", "ok", "okay", "well", "both", "either", "pick", "choose", "select",
))
_ZH_DENY_AFTER = "型类族组级"
_NOT_TEXT_START = " \t.):-–—"
#: a letter line that is one of an option list, or judges its option wrong, is not the answer
_NEXT_LABEL = re.compile(r"\s*[(\[]?[a-h][)\]]?[ \t]*[.:)、]")
#: an option line anywhere after ("A. x", "(B)", "C" alone, "Option D:")
_LATER_LABEL = re.compile(r"\n[ \t]*(?:option[ \t]+)?[(\[]?[a-h][)\]]?[ \t]*(?:[.:)、]|\n|$)")
#: a colon line that concludes: it ends in a singular copula ("… the finding that confirms it is:", "…的是：")
#: and does not ask ("Which of the following is:"); not "Let's look at option A:", "The options left are:"
_CONCLUDING_HEAD = re.compile(r"(?<![a-z])(?:is|be|was|remains)[ \t]*\Z|(?:是|为)[ \t]*\Z")
_ASKING_HEAD = re.compile(r"\?|^[ \t]*(?:which|what)(?![a-z])|下列|哪")
_OWN_REJECT = re.compile(r"(?<![a-z])(?:not|incorrect|wrong|unlikely|isn't)(?![a-z])|不|错")
#: what may come before "answer" on a heading line ("## Final Answer\nC")
_ZH_HEADING_WORDS = re.compile(r"[ \t\[]*(?:最终|正确|参考|标准|本题)?")
_HEADING_WORDS = re.compile(r"[ \t]*(?:(?:the|my|our|final|correct|best|right|most|appropriate|single|likely)[ \t]+)*")

#: a hypothetical ("if the answer were A", "A would be the answer if …") is not a commitment
_HYPOTHETICAL_BEFORE = re.compile(r"(?:^|[^a-z])(?:if|whether|unless|suppose|supposing|assuming)[ \t][^.;:!?,\n]*$")
_HYPOTHETICAL_AFTER = re.compile(r"[ \t,]+(?:if|when|unless|only[ \t]+if|provided|in[ \t]+case)(?![a-z])")
#: what may not come right before a Chinese commitment word ("不选A", "如果选A", "并不是A")
_ZH_NOT_BEFORE = ("不", "不应", "不能", "不会", "不该", "不要", "别", "如果", "若", "假如", "假设", "可", "可以", "是否",
                  "不是", "并非", "比", "于")

#: letters inside a boxed / JSON / tag value (original case): "C", "(C)", "C. Dantrolene", "A, C", ["B"]
_VALUE_LETTERS = re.compile(
    r"^[\s\"'\[(]*(?P<grp>[A-Ha-h](?:[\s\"',、/)]*(?:and|or|和|或|与)?[\s\"',(]*[A-H]){0,7})(?![A-Za-z0-9])"
)
#: a letter in an original-case span
_LETTER = re.compile(r"(?<![A-Za-z])[A-Ha-h](?![A-Za-z])")

#: a letter put as a question ("答案是B吗？", "The answer is B?") is not a commitment
_QUESTIONED = re.compile(r"[ \t]*(?:项|选项)?[ \t]*(?:吗|呢|\?|还是)")
#: the letter is one of a list ("B and C fit", "A、C最符合"): a pattern starting at a later letter of it
#: does not commit to that letter alone (original case; searched in the characters before the letter)
_JOINED_BEFORE = re.compile(
    r"(?<![A-Za-z])[A-H][)\]]?[ \t]*(?:,|、|/|&|\+|和|与|及|或者|或|and|or)[ \t]*(?:[Oo]ption[ \t]+|选项)?[(\[]?[ \t]*\Z"
)
#: the word before an answer noun that turns it around ("the wrong answer is A")
_NEG_ADJ = re.compile(r"(?:wrong|incorrect|false|worst|not|n't|least[ \t]+correct)[ \t]+(?:[a-z]+[ \t]+)?$")
#: right after the letter, a verdict that cancels the commitment ("Answer: C is incorrect because …",
#: "答案A项错误" is an analysis, not an answer)
_NEG_AFTER = re.compile(
    r"[ \t]*(?:项|选项)?[ \t]*(?:是|说法|描述)?(?:错误|错|不正确|不对|不是|不选|排除|也不)"
    r"|[ \t]*(?:is|are|was|would[ \t]+be)(?:n't|[ \t]+(?:not|incorrect|wrong|false|unlikely))(?![a-z])"
)


class Hit(NamedTuple):
    """One vetted commitment. ``letters`` are upper-case, unique, in order of appearance."""

    pos: int
    letters: tuple[str, ...]
    method: str
    tier: int
    end: int = -1  # where the letter(s) end, if known
    whole_reply: bool = False  # stands only if the reply is finished (its rule reads what follows it)


def lower_same_length(text: str) -> str:
    """``text.lower()``, keeping the few characters whose lower case is longer (so offsets agree).

    >>> lower_same_length("İC")
    'İc'
    """
    low = text.lower()
    return low if len(low) == len(text) else "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def anchor_positions(lower: str, anchors: tuple[str, ...], start: int, stop: int) -> dict[str, list[int]]:
    """For each of ``anchors`` that occurs in ``lower[start:stop]``, the offsets where it begins."""
    out: dict[str, list[int]] = {}
    for a in anchors:
        limit = stop + len(a) - 1
        i = lower.find(a, start, limit)
        while i != -1:
            out.setdefault(a, []).append(i)
            i = lower.find(a, i + 1, limit)
    return out


def matches(
    pattern: re.Pattern[str], lower: str, anchors: tuple[str, ...], start: int = 0, stop: int | None = None
) -> list[re.Match[str]]:
    """``pattern.match`` at every offset in ``[start, stop)`` where one of ``anchors`` begins, in text
    order (matches may overlap and may run past ``stop``).

    >>> [m.start() for m in matches(re.compile(r"not \\w"), "not a, not b", ("not",))]
    [0, 7]
    """
    positions = anchor_positions(lower, anchors, start, len(lower) if stop is None else stop).values()
    found = (pattern.match(lower, i) for i in sorted({i for ps in positions for i in ps}))
    return [m for m in found if m is not None]


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
        if j == i:
            return False
        k = j - 1
        while k > 0 and text[k - 1].isascii() and (text[k - 1].isalpha() or text[k - 1] == "'"):
            k -= 1
        return text[k:j].lower() in _ALLOWED_BEFORE
    return not ((ch.isdigit() and j == i) or (ch == "-" and j >= 2 and text[j - 2].isalnum()))


def _lower_ok(text: str, end: int, letter: str) -> bool:
    """A lower-case letter counts only where the English word "a" (or "e.g.") cannot be meant.

    >>> _lower_ok("the answer is a drug", 15, "a"), _lower_ok("the answer is a.", 15, "a")
    (False, True)
    """
    after = text[end:end + 2]
    if letter == "a":
        return after == "" or (after[0] in ".,;:!?)]。，；\n" and not after[1:2].isalpha())
    return not (after[:1] == "." and after[1:2].isalpha())


def _group_letters(text: str, start: int, end: int, lower_first: bool) -> tuple[str, ...]:
    """Letters (upper-cased, unique) of ``text[start:end]``; after the first, only capitals count."""
    out: list[str] = []
    for m in _LETTER.finditer(text, start, end):
        ch = m.group()
        if ch.islower() and (out or not lower_first):
            break
        if ch.upper() not in out:
            out.append(ch.upper())
    return tuple(out)


def _vet(text: str, lower: str, m: re.Match[str], checks: int, index: OptionIndex) -> tuple[str, ...]:
    """The letters of match ``m`` if it passes the ``checks`` its pattern needs, else ``()``."""
    start = m.start()
    if checks & R.WORD_START and start and "a" <= lower[start - 1] <= "z":
        return ()
    if checks & R.ZH_NOT_BEFORE and lower.endswith(_ZH_NOT_BEFORE, max(0, start - 2), start):
        return ()
    group_start, group_end = m.span("grp")
    letters = _group_letters(text, group_start, group_end, bool(checks & R.LOWER_OK))
    first = _LETTER.search(text, group_start, group_end)
    if first is None or not letters or (first.group().islower() and not _lower_ok(text, group_end, first.group())):
        return ()
    if checks & R.OPTION_REF and (
        not ref_ok(text, first.start())
        or _JOINED_BEFORE.search(text, max(0, first.start() - 16), first.start())
        or _QUESTIONED.match(lower, m.end())
    ):
        return ()
    if _QUESTIONED.match(lower, group_end):
        return ()
    if checks & R.NEG_ADJ and _NEG_ADJ.search(lower, max(0, start - 30), start):
        return ()
    # "## Answer\nC" is a heading; "Let's evaluate each option:\nOption A is wrong" is not
    # ("… the most suitable choice is:\nD. 10 mg/kg" is an answer: the verb says so, if the letter's
    # line is the bare letter or its own option's text)
    if checks & R.HEADING:
        verbal = m.group("sep").strip()[:1].isalpha()
        after_nl = "\n" in lower[m.end("sep"):group_start]
        heading = _HEADING_WORDS.fullmatch(lower, lower.rfind("\n", 0, start) + 1, start)
        if ("\n" in m.group("sep") or (after_nl and m.group("head") != "answer" and not verbal)) and not heading:
            return ()
        if after_nl and verbal and not heading and not _answer_line(lower, group_end, letters[0], index):
            return ()
    # "## 答案\nC" is a heading; "……的答案\nC项错误" is not; "……正确答案应该是：\n\nB. 错误" is an answer
    if (
        checks & R.ZH_ONLY
        and "nl" in m.re.groupindex
        and m.group("nl")
        and not _ZH_HEADING_WORDS.fullmatch(lower, lower.rfind("\n", 0, start) + 1, start)
        and not (("是" in m.group("nl") or "为" in m.group("nl")) and _answer_line(lower, group_end, letters[0], index))
    ):
        return ()
    if checks & R.BETWEEN and m.group("between") and not m.group("between").lstrip().startswith("("):
        named = m.group("between").lstrip(_NOT_TEXT_START)
        if letters[0] not in mentions(named, index):
            return ()
    if _NEG_AFTER.match(lower, group_end):
        return ()
    if checks & R.OWN_TEXT and not _answer_line(lower, group_end, letters[0], index, alone=False):
        return ()
    if checks & R.COLON_LINE and not _closes_option_lines(lower, start, group_end, letters[0], index):
        return ()
    if checks & R.HYPOTHETICAL:
        if _HYPOTHETICAL_BEFORE.search(lower, max(0, start - 40), start):
            return ()
        if "would" in m.group() and _HYPOTHETICAL_AFTER.match(lower, m.end()):
            return ()
    return letters


def _answer_line(lower: str, at: int, letter: str, index: OptionIndex, alone: bool = True) -> bool:
    """Whether the rest of the line after the letter at ``lower[at]`` starts with that option's text
    and names no other option, or (if ``alone``) is empty, and no option line follows (it is not the
    first line of an option list).

    >>> from anesbench.grading._normalize import option_index
    >>> _answer_line("c. dantrolene, it works", 1, "C", option_index((("C", "Dantrolene"), ("D", "Propofol"))))
    True
    """
    end = lower.find("\n", at)
    line = lower[at:len(lower) if end == -1 else end]
    if end != -1 and _NEXT_LABEL.match(lower, end):
        return False
    if alone and not line.strip(" \t.。:)]"):
        return True
    rest = line.lstrip(_NOT_TEXT_START)
    if not rest:
        return False
    start = at + len(line) - len(rest)
    if index.is_text_of(letter, rest.rstrip(" \t.。")):  # "B. 错误" where B is "错误"
        return True
    if end == -1 and len(rest) >= 8 and any(form.startswith(rest.rstrip()) for form in index.forms.get(letter, ())):
        return True  # the reply was cut off inside the option's own text
    return not _OWN_REJECT.search(rest) and index.match_at(lower, start) and set(mentions(rest, index)) == {letter}


def _closes_option_lines(lower: str, colon: int, at: int, letter: str, index: OptionIndex) -> bool:
    """Whether the letter line ending at ``lower[at]``, after the line ending in a colon at
    ``lower[colon]``, is the reply's conclusion: the colon line concludes (ends in "is", "是" …;
    asks nothing), no option line follows, and the letter's line neither rejects the option nor
    names another one first."""
    head = lower[lower.rfind("\n", 0, colon) + 1:colon]
    wordy = len(head.split()) >= 3 or sum("\u4e00" <= ch <= "\u9fff" for ch in head) >= 4
    if not wordy or not _CONCLUDING_HEAD.search(head) or _ASKING_HEAD.search(head):
        return False
    line_end = lower.find("\n", at)
    if line_end != -1 and _LATER_LABEL.search(lower, line_end):
        return False
    rest = lower[at:len(lower) if line_end == -1 else line_end]
    named = mentions(rest, index)
    return not _OWN_REJECT.search(rest) and (not named or named[0] == letter)


def _value_letters(value: str, index: OptionIndex) -> tuple[str, ...]:
    """Letters of a boxed / JSON / tag value (original case), or the one option its text names.

    >>> from anesbench.grading._normalize import option_index
    >>> _value_letters("(C) Dantrolene", option_index(())), _value_letters("A, C", option_index(()))
    (('C',), ('A', 'C'))
    """
    m = _VALUE_LETTERS.match(value)
    if m is not None:
        rest = value[m.end():].strip(" \t\"'.)]}")
        if not (m.group("grp")[0].islower() and rest and rest[0] not in ".:)-"):
            return _group_letters(value, m.start("grp"), m.end("grp"), True)
    named = tuple(dict.fromkeys(mentions(value.lower(), index)))
    return named if len(named) == 1 else ()


def find_commitments(
    text: str, lower: str, index: OptionIndex, start: int = 0, stop: int | None = None, weak: bool = False
) -> list[Hit]:
    """All vetted commitments in ``text`` (normalized; ``lower`` is its :func:`lower_same_length`)
    that begin in ``[start, stop)``, sorted by position. Only the WEAK tier if ``weak``, else only
    the others. ``AT_END`` patterns (anchored at the end of the text) only run when ``stop`` is the end."""
    end = len(text) if stop is None else stop
    hits: list[Hit] = []
    ascii_only = text.isascii()
    at = anchor_positions(lower, _EN_ANCHORS if ascii_only else _ALL_ANCHORS, start, end)
    caps = [m.start() for m in CAPITAL.finditer(text, start, end)]
    for rule in _PHRASE_RULES:
        checks = rule.checks
        if (rule.tier == R.WEAK) != weak or (checks & R.ZH_ONLY and ascii_only):
            continue
        if checks & R.AT_END:  # only where the text ends
            found = list(rule.pattern.finditer(lower, max(start, len(lower) - 24))) if end == len(text) else []
        else:
            positions = caps if rule.anchors == R.CAPS else sorted({i for a in rule.anchors for i in at.get(a, ())})
            found = [m for i in positions if (m := rule.pattern.match(lower, i)) is not None]
        for m in found:
            if letters := _vet(text, lower, m, checks, index):
                hits.append(Hit(m.start("grp"), letters, rule.method, rule.tier, m.end("grp"), bool(checks & R.COLON_LINE)))
    for rule in () if weak else _VALUE_RULES:
        for m in rule.pattern.finditer(lower, start) if rule.value in lower else ():
            if m.start() >= end:
                break
            if letters := _value_letters(text[m.start("c"):m.end("c")], index):
                hits.append(Hit(m.start(), letters, rule.method, R.STRONG))
    hits.sort(key=lambda h: (h.pos, h.tier, -len(h.letters)))  # at one offset, "C … or A" beats "C"
    return [h for i, h in enumerate(hits) if i == 0 or hits[i - 1].pos != h.pos]


# Option-by-option verdicts: "A is incorrect … C is correct …", "A 错误 … C 正确". Every verdict is an event
# (position, letter, polarity); the last verdict on a letter stands. Verdicts come from option-labelled lines
# ("B. Ketamine: incorrect") and from a letter right before a verdict word ("C is correct", "C 正确"); a
# letter named after a negation ("not C", "不选C") is judged wrong.
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
        if lower.endswith(_NOT_BEFORE.get("correct" if word.startswith("correct") else word, ()), max(0, s - 3), s):
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


#: a final-answer phrase; one that comes after the verdicts decides, not they, even if unread
_FINAL_HEAD = re.compile(r"(?:answer|choice)[ \t]+(?:is|would[ \t]+be|should[ \t]+be)(?![a-z])|answer[ \t]*:|答案")


def judge_options(text: str, lower: str, valid: frozenset[str]) -> tuple[tuple[str | None, str] | None, frozenset[str]]:
    """From the standing (last) verdict on each letter: ``(letter, "verdict")`` when exactly one option
    is judged correct, none both ways, and no final-answer phrase follows that verdict ("… C is correct.
    The answer is: 10 mg/kg"); ``(None, "none_ambiguous")`` when several are (or one is judged both
    ways); else ``None``. With it, the letters whose standing verdict is wrong.

    >>> t = "A is correct. Wait, no: A is wrong, not B either. C is correct."
    >>> judged, rejected = judge_options(t, t.lower(), frozenset("ABCD"))
    >>> judged, sorted(rejected)
    (('C', 'verdict'), ['A', 'B'])
    """
    events: list[tuple[int, str, bool | None]] = []
    contrasts: list[tuple[int, str, bool, str]] = []
    labels = [(m.start("l"), m.start(), m.end()) for m in _LABEL.finditer(lower) if text[m.start("l")].isupper()]
    for m in _CLAUSE_LABEL.finditer(lower):
        at = max(m.start("l"), m.start("k"))  # the one of the two that matched
        if text[at].isupper():
            labels.append((at, m.start("body"), m.end()))
    labels = sorted({label[0]: label for label in sorted(labels, reverse=True)}.values())  # one per letter offset
    for i, (at, _, end) in enumerate(labels):
        stop = labels[i + 1][1] if i + 1 < len(labels) else len(lower)
        if (gap := _SEGMENT_END.search(lower, end, stop)) is not None:
            stop = gap.start()
        # a later letter ends it ("选项A、B、C中…": the verdict is not A's)
        stop = next((cap.start() for cap in CAPITAL.finditer(text, end, stop) if ref_ok(text, cap.start())), stop)
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
    for m in _YES_NO.finditer(lower) if "yes" in lower else ():
        if text[m.start("l")].isupper():
            events.append((m.start("l"), text[m.start("l")], m.group("pos") is not None))
    events.sort(key=lambda e: (e[0], e[2] is None))  # a two-way segment outweighs "B is correct" in it
    standing = {letter: (positive, at) for at, letter, positive in events}
    rejected = frozenset(letter for letter, (positive, _) in standing.items() if positive is False)
    last = {letter: positive for letter, (positive, _) in standing.items() if letter in valid}
    winners = [letter for letter, positive in last.items() if positive]
    if len(winners) == 1 and None not in last.values():
        return None if _FINAL_HEAD.search(lower, standing[winners[0]][1]) else (winners[0], "verdict"), rejected
    return (None, "none_ambiguous") if winners else None, rejected
