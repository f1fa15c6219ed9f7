"""Match a reply against the options' own text ("The best choice is dantrolene." → the
"Dantrolene" option). Exact (case-folded, normalized) text only: never fuzzy similarity.

>>> idx = option_index((("A", "Propofol"), ("B", "Dantrolene")))
>>> by_option_text("The best choice is dantrolene.", idx)
('B', 'option_text')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from anesbench.grading._normalize import normalize
from anesbench.grading._scan import matches

_PAREN = re.compile(r"[ \t]*\([^()]*\)")
_SPACES = re.compile(r"\s+")
_TRIM = " \t.。;；,，:!！"
_NEG_BEFORE = re.compile(
    r"(?:\bnot|\brather than|\binstead of|\bother than|\bnor|n't|\bthan|\bexcept|\bunlike|\bavoid"
    r"|不是|而非|并非|不选|不用|排除|除了|避免|不宜|不能用|禁用)[^,.;:，。；：!?！？]*$"
)
_NEG_AFTER = re.compile(
    r"^[ \t]*(?:is|are|was)(?:n't|[ \t]+not|[ \t]+(?:incorrect|wrong|unlikely|ruled))"
    r"|^[ \t]*(?:也|亦|都|均|则)?(?:不|错误|是错|并不|并非|非)"
)
_HEAD = re.compile(
    r"(?:answer|choice|option)(?:[ \t]+here)?[ \t]*(?:is|would be|should be|will be|:)(?![a-z])"
    r"|i(?:'d| would| will)?[ \t]+(?:choose|select|pick|go with|recommend|use)(?![a-z])"
    r"|答案(?:是|为|:)|选(?:择|用)?(?!项)|首选|应(?:该|当)?(?:使用|用|选用|给予|首选)"
)
_HEAD_ANCHORS = ("answer", "choice", "option", "i ", "i'", "答案", "选", "首选", "应")
_SENTENCE_END = re.compile(r"\n|。|;|[.!?](?:\s|$)")
#: a short reply that says it does not know names an option without choosing it
_UNSURE = re.compile(r"not sure|unsure|uncertain|don't know|do not know|unclear|不确定|不知道|不清楚|拿不准")


@dataclass(frozen=True, slots=True)
class OptionIndex:
    """Lower-cased option texts of one question, compiled into one alternation.

    >>> option_index((("A", "Class I"), ("B", "Class II"))).letter_of["class ii"]
    'B'
    """

    letters: frozenset[str]
    forms: dict[str, tuple[str, ...]]
    letter_of: dict[str, str]
    pattern: re.Pattern[str] | None


def _forms(text: str) -> list[str]:
    """Lower-cased forms an option may be named by: whole text, and without parentheticals.

    >>> _forms("Dantrolene (Dantrium).")
    ['dantrolene (dantrium)', 'dantrolene']
    """
    full = _SPACES.sub(" ", normalize(text).lower()).strip(_TRIM)
    out = [full]
    bare = _PAREN.sub("", full).strip(_TRIM)
    if bare and bare != full:
        out.append(bare)
    return [f for f in out if len(f) >= (3 if f.isascii() else 2)]


@lru_cache(maxsize=4096)
def option_index(items: tuple[tuple[str, str], ...]) -> OptionIndex:
    """Build (and cache per choices tuple) the option-text matcher.

    >>> option_index((("A", "Propofol"),)).forms["A"]
    ('propofol',)
    """
    owners: dict[str, set[str]] = {}
    per_letter: dict[str, tuple[str, ...]] = {}
    for letter, text in items:
        forms = tuple(_forms(str(text)))
        per_letter[letter] = forms
        for form in forms:
            owners.setdefault(form, set()).add(letter)
    letter_of = {form: next(iter(ls)) for form, ls in owners.items() if len(ls) == 1}
    pattern = None
    if letter_of:
        parts = []
        for form in sorted(letter_of, key=len, reverse=True):
            pre = r"(?<![a-z0-9])" if form[0].isascii() and form[0].isalnum() else ""
            post = r"(?![a-z0-9])" if form[-1].isascii() and form[-1].isalnum() else ""
            parts.append(pre + re.escape(form) + post)
        pattern = re.compile("|".join(parts))
    return OptionIndex(frozenset(per_letter), per_letter, letter_of, pattern)


def mentions(lower: str, index: OptionIndex, start: int = 0, end: int | None = None) -> list[str]:
    """Letters whose option text is named, not negated, in ``lower[start:end]`` (in order).

    >>> mentions("bupivacaine, not lidocaine", option_index((("A", "Lidocaine"), ("B", "Bupivacaine"))))
    ['B']
    """
    if index.pattern is None:
        return []
    stop = len(lower) if end is None else end
    found: list[str] = []
    for m in index.pattern.finditer(lower, start, stop):
        if _NEG_BEFORE.search(lower, max(start, m.start() - 24), m.start()):
            continue
        if _NEG_AFTER.match(lower[m.end(): m.end() + 24]):
            continue
        found.append(index.letter_of[m.group()])
    return found


def by_option_text(text: str, index: OptionIndex, rejected: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """The letter whose text alone the reply names as its answer, as ``(letter, method)``.

    Looks after the last answer-like head ("the answer is …", "首选…"); a short reply is read
    whole unless it says it is unsure. Options in ``rejected`` (judged wrong by letter: "C is not
    the answer") never count. Exactly one option must be named, otherwise
    ``(None, "none_ambiguous" | "none_no_match")``.

    >>> by_option_text("Either propofol or dantrolene.", option_index((("A", "Propofol"), ("B", "Dantrolene"))))
    (None, 'none_ambiguous')
    """
    lower = text.lower()
    heads = [m for m in matches(_HEAD, lower, _HEAD_ANCHORS)
             if not (m.group()[0] == "i" and m.start() and "a" <= lower[m.start() - 1] <= "z")
             and not (m.group()[0] == "选" and lower[m.start() - 1:m.start()] == "不")]
    last = heads[-1] if heads else None
    if last is not None:
        stop = _SENTENCE_END.search(lower, last.end())
        end = min(stop.start() if stop else len(lower), last.end() + 200)
        named = set(mentions(lower, index, last.end(), end)) - rejected
        if len(named) == 1:
            return named.pop(), "option_text"
    if len(text) <= 250 and not _UNSURE.search(lower):
        named = set(mentions(lower, index)) - rejected
        if len(named) == 1:
            return named.pop(), "option_text"
        if len(named) > 1:
            return None, "none_ambiguous"
    return None, "none_no_match"
