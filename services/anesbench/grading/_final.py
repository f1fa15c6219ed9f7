"""Find every explicit final-answer construct in a normalized reply, vetted, in text order.

The constructs are the rules of ``_rules.py``; this module runs them at their anchors and makes
the checks each rule names. A :class:`Hit` is one commitment: where it is, the letters it names
(several distinct ones make it ambiguous), the method name and a strength tier. Callers take the
last one (self-corrections).

>>> [h.letters for h in find_commitments("Answer: A. Wait, no. The answer is C.", None)]
[('A',), ('C',)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anesbench.grading import _patterns as P
from anesbench.grading import _rules as R
from anesbench.grading._option_text import OptionIndex, mentions

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


@dataclass(frozen=True, slots=True)
class Hit:
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
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


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
    """Letters (upper-cased, unique) of ``text[start:end]``; after the first, only capitals count.

    >>> _group_letters("B or C", 0, 6, False), _group_letters("c and D", 0, 7, True)
    (('B', 'C'), ('C', 'D'))
    """
    out: list[str] = []
    for m in P.LETTER.finditer(text, start, end):
        ch = m.group()
        if ch.islower() and (out or not lower_first):
            break
        if ch.upper() not in out:
            out.append(ch.upper())
    return tuple(out)


def _vet(text: str, lower: str, m: re.Match[str], checks: int, index: OptionIndex | None) -> tuple[str, ...]:
    """The letters of match ``m`` if it passes the ``checks`` its pattern needs, else ``()``.

    >>> t = "Vitamin A is the answer"
    >>> _vet(t, t.lower(), R.RULES[1].pattern.match(t.lower(), 8), R.OPTION_REF, None)
    ()
    """
    start = m.start()
    if checks & R.WORD_START and start and "a" <= lower[start - 1] <= "z":
        return ()
    if checks & R.ZH_NOT_BEFORE and lower.endswith(P.ZH_NOT_BEFORE, max(0, start - 2), start):
        return ()
    group_start, group_end = m.span("grp")
    letters = _group_letters(text, group_start, group_end, bool(checks & R.LOWER_OK))
    if not letters:
        return ()
    first = P.LETTER.search(text, group_start, group_end)
    assert first is not None
    if first.group().islower() and not _lower_ok(text, group_end, first.group()):
        return ()
    if checks & R.OPTION_REF and (
        not ref_ok(text, first.start())
        or P.JOINED_BEFORE.search(text, max(0, first.start() - 16), first.start())
        or P.QUESTIONED.match(lower, m.end())
    ):
        return ()
    if P.QUESTIONED.match(lower, group_end):
        return ()
    if checks & R.NEG_ADJ and P.NEG_ADJ.search(lower, max(0, start - 30), start):
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
        if index is None or letters[0] not in mentions(named, index):
            return ()
    if P.NEG_AFTER.match(lower, group_end):
        return ()
    if checks & R.OWN_TEXT and not _own_text_follows(lower, group_end, letters[0], index):
        return ()
    if checks & R.COLON_LINE and not _closes_option_lines(lower, start, group_end, letters[0], index):
        return ()
    if checks & R.HYPOTHETICAL:
        if P.HYPOTHETICAL_BEFORE.search(lower, max(0, start - 40), start):
            return ()
        if "would" in m.group() and P.HYPOTHETICAL_AFTER.match(lower, m.end()):
            return ()
    return letters


def _answer_line(lower: str, at: int, letter: str, index: OptionIndex | None) -> bool:
    """Whether the letter ending at ``lower[at]`` stands alone on its line or with its own text only
    (not the first line of an option list).

    >>> _answer_line("c\\nthat is all", 1, "C", None), _answer_line("c. x\\nd. y", 1, "C", None)
    (True, False)
    """
    end = lower.find("\n", at)
    if not lower[at:len(lower) if end == -1 else end].strip(" \t.。:)]"):
        return not (end != -1 and _NEXT_LABEL.match(lower, end))
    return _own_text_follows(lower, at, letter, index)


def _own_text_follows(lower: str, at: int, letter: str, index: OptionIndex | None) -> bool:
    """Whether the rest of the line after the letter at ``lower[at]`` starts with that option's
    text and names no other option.

    >>> from anesbench.grading._option_text import option_index
    >>> idx = option_index((("C", "Dantrolene"), ("D", "Propofol")))
    >>> _own_text_follows("c. dantrolene, it works", 1, "C", idx), _own_text_follows("c. propofol", 1, "C", idx)
    (True, False)
    >>> _own_text_follows("c. dantrolene\\nd. propofol", 1, "C", idx)  # a list of the options, not an answer
    False
    """
    if index is None:
        return False
    end = lower.find("\n", at)
    line = lower[at:len(lower) if end == -1 else end]
    rest = line.lstrip(_NOT_TEXT_START)
    if not rest or (end != -1 and _NEXT_LABEL.match(lower, end)):
        return False
    start = at + len(line) - len(rest)
    if index.is_text_of(letter, rest.rstrip(" \t.。")):  # "B. 错误" where B is "错误"
        return True
    if end == -1 and len(rest) >= 8 and any(form.startswith(rest.rstrip()) for form in index.forms.get(letter, ())):
        return True  # the reply was cut off inside the option's own text
    if _OWN_REJECT.search(rest):
        return False
    return index.match_at(lower, start) and set(mentions(rest, index)) == {letter}


def _closes_option_lines(lower: str, colon: int, at: int, letter: str, index: OptionIndex | None) -> bool:
    """Whether the letter line ending at ``lower[at]``, after the line ending in a colon at
    ``lower[colon]``, is the reply's conclusion: the colon line is a sentence that concludes (ends
    in "is", "是" …; asks nothing), no option line follows the letter's, and the letter's line
    neither rejects the option nor names another one first.

    >>> _closes_option_lines("so the answer here is:\\nc. x", 21, 24, "C", None)
    True
    >>> _closes_option_lines("the option here is:\\na. x\\nb. y", 18, 21, "A", None)
    False
    """
    head_start = lower.rfind("\n", 0, colon) + 1
    head = lower[head_start:colon]
    wordy = len(head.split()) >= 3 or sum("\u4e00" <= ch <= "\u9fff" for ch in head) >= 4
    if not wordy or not _CONCLUDING_HEAD.search(head) or _ASKING_HEAD.search(head):
        return False
    line_end = lower.find("\n", at)
    if line_end != -1 and _LATER_LABEL.search(lower, line_end):
        return False
    rest = lower[at:len(lower) if line_end == -1 else line_end]
    if _OWN_REJECT.search(rest):
        return False
    named = mentions(rest, index) if index is not None else []
    return not named or named[0] == letter


def _value_letters(value: str, index: OptionIndex | None) -> tuple[str, ...]:
    """Letters of a boxed / JSON / tag value (original case), or the one option its text names.

    >>> _value_letters("(C) Dantrolene", None), _value_letters("A, C", None)
    (('C',), ('A', 'C'))
    """
    m = P.VALUE_LETTERS.match(value)
    if m is not None:
        rest = value[m.end():].strip(" \t\"'.)]}")
        if not (m.group("grp")[0].islower() and rest and rest[0] not in ".:)-"):
            return _group_letters(value, m.start("grp"), m.end("grp"), True)
    if index is not None:
        named = tuple(dict.fromkeys(mentions(value.lower(), index)))
        if len(named) == 1:
            return named
    return ()


def find_commitments(
    text: str,
    index: OptionIndex | None,
    start: int = 0,
    stop: int | None = None,
    lower: str | None = None,
    weak: bool = False,
) -> list[Hit]:
    """All vetted commitments in ``text`` (normalized) that begin in ``[start, stop)``, sorted by
    position (``lower`` is :func:`lower_same_length` of ``text`` if the caller has it already).
    Only the WEAK tier if ``weak``, else only the others (weak ones matter only when there are no
    others). ``AT_END`` patterns (anchored at the end of the text) only run when ``stop`` is the end.

    >>> [(h.letters, h.method) for h in find_commitments("最终答案：\\\\boxed{B}", None)]
    [(('B',), 'boxed')]
    """
    if lower is None:
        lower = lower_same_length(text)
    end = len(text) if stop is None else stop
    hits: list[Hit] = []
    ascii_only = text.isascii()
    at = P.anchor_positions(lower, _EN_ANCHORS if ascii_only else _ALL_ANCHORS, start, end)
    caps: list[int] | None = None
    for rule in _PHRASE_RULES:
        checks = rule.checks
        if (rule.tier == R.WEAK) != weak or (checks & R.ZH_ONLY and ascii_only):
            continue
        if checks & R.AT_END:
            if end < len(text):
                continue
            found = list(rule.pattern.finditer(lower, max(start, len(lower) - 24)))
        else:
            if rule.anchors == R.CAPS:
                if caps is None:
                    caps = [m.start() for m in CAPITAL.finditer(text, start, end)]
                positions = caps
            else:
                lists = [at[a] for a in rule.anchors if a in at]
                if not lists:
                    continue
                positions = lists[0] if len(lists) == 1 else sorted({i for ps in lists for i in ps})
            found = [m for i in positions if (m := rule.pattern.match(lower, i)) is not None]
        for m in found:
            letters = _vet(text, lower, m, checks, index)
            if letters:
                hits.append(Hit(m.start("grp"), letters, rule.method, rule.tier, m.end("grp"), bool(checks & R.COLON_LINE)))
    if not weak:
        for rule in _VALUE_RULES:
            if rule.value not in lower:
                continue
            for m in rule.pattern.finditer(lower, start):
                if m.start() >= end:
                    break
                letters = _value_letters(text[m.start("c"):m.end("c")], index)
                if letters:
                    hits.append(Hit(m.start(), letters, rule.method, R.STRONG))
    if len(hits) > 1:
        hits.sort(key=lambda h: (h.pos, h.tier, -len(h.letters)))  # at one offset, "C … or A" beats "C"
        hits = [h for i, h in enumerate(hits) if i == 0 or hits[i - 1].pos != h.pos]
    return hits
