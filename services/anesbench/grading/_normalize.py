"""Prepare a reply before any pattern looks at it, and match it against the options' own text.

First remove its reasoning traces (``<think>…</think>``), so that only the visible answer is graded,
and put that into one canonical form: full-width letters and punctuation become ASCII (``Ｃ`` → ``C``,
``：`` → ``:``), circled letters become plain ones, markdown emphasis and headings are dropped,
struck-through text is removed, LaTeX ``\\text{…}``-style wrappers are unwrapped (``\\boxed`` itself is
kept), and every run of whitespace becomes one space, one line break or one blank line.

An option is named by its exact (case-folded, normalized) text only: never by fuzzy similarity
("The best choice is dantrolene." → the "Dantrolene" option).

>>> normalize("**答案：Ｂ**")
'答案:B'
>>> by_option_text("The best choice is dantrolene.", option_index((("A", "Propofol"), ("B", "Dantrolene"))))
('B', 'option_text')
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache

_THINK_TAG = re.compile(r"<(/?)(?:think|thinking|reasoning)(?(1)\s*)>", re.IGNORECASE)


def strip_think(text: str) -> str:
    """Return the visible text of a reply: closed ``<think>…</think>`` blocks removed; before a stray
    ``</think>`` (the opening tag was in the prompt, DeepSeek-R1 style) everything was reasoning;
    after an unclosed ``<think>`` the rest is reasoning that never finished, so the answer is absent.

    >>> strip_think("okay so C</think>\\n\\nAnswer: C"), strip_think("<think>\\nhmm, A or C")
    ('Answer: C', '')
    """
    if "<" not in text:
        return text.strip()
    # One pass over the tags (linear time even for thousands of unclosed tags).
    pieces: list[str] = []
    position, inside = 0, False
    for tag in _THINK_TAG.finditer(text):
        closing = bool(tag.group(1))
        if not inside and not closing:
            pieces.append(text[position:tag.start()])
            inside = True
        elif inside and closing:
            pieces.append("\n")
            position, inside = tag.end(), False
        elif closing:  # a stray close: everything before it was reasoning
            pieces, position = [], tag.end()
    if not inside:
        pieces.append(text[position:])
    return "".join(pieces).strip()


_TABLE: dict[int, int | str | None] = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_TABLE.update({0x3000: " ", 0x3010: "[", 0x3011: "]", 0x3014: "[", 0x3015: "]", 0x2018: "'", 0x2019: "'",
               0x201C: '"', 0x201D: '"', 0x200B: None, 0xFEFF: None, 0x00A0: " ", 0x2212: "-"})
_TABLE.update({0x24B6 + i: chr(0x41 + i) for i in range(8)})  # Ⓐ..Ⓗ
_TABLE.update({0x24D0 + i: chr(0x61 + i) for i in range(8)})  # ⓐ..ⓗ
#: the full-width and typographic characters that are common in replies: plain ``str.replace`` is
#: ~30x faster than ``str.translate`` with a dict table, which is kept for the rare ones
_COMMON: tuple[tuple[str, str], ...] = (
    ("：", ":"), ("，", ","), ("（", "("), ("）", ")"), ("【", "["), ("】", "]"), ("；", ";"), ("！", "!"),
    ("？", "?"), ("．", "."), ("\u3000", " "), ("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("\xa0", " "),
)
_COMMON_RX = re.compile("[" + "".join(wide for wide, _ in _COMMON) + "]")
_ASCII_DROP = ("*", "`", "$", "\r")
_RARE = re.compile(r"[\uff01-\uff5e\u24b6-\u24bd\u24d0-\u24d7\u3014\u3015\u200b\ufeff\u2212]")

_STRIKE = re.compile(r"~~.*?~~", re.DOTALL)
_HEADING = re.compile(r"^[ \t]*(?:#{1,6}|>+)[ \t]*", re.MULTILINE)
_UNDERLINE = re.compile(r"(?<![A-Za-z0-9])__|__(?![A-Za-z0-9])")
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_DELIM = re.compile(r"\\[()\[\]]")
#: a run of whitespace, or one space other than " " and "\n": every run becomes " ", "\n" or "\n\n", so
#: that no rule meets a long run to backtrack over (several optional spaces in a row would be polynomial)
_WHITESPACE = re.compile(r"\s{2,}|[^\S \n]")


def normalize(text: str) -> str:
    """Return ``text`` in canonical form (see the module docstring).

    >>> normalize("## Final answer\\n\\\\boxed{\\\\text{C}}")
    'Final answer\\n\\\\boxed{C}'
    """
    if "~~" in text:
        text = _STRIKE.sub("", text)
    for drop in _ASCII_DROP:
        text = text.replace(drop, "")
    if not text.isascii():
        if _COMMON_RX.search(text):
            for wide, narrow in _COMMON:
                text = text.replace(wide, narrow)
        text = _RARE.sub(lambda m: m.group().translate(_TABLE), text)
    if "#" in text or ">" in text:
        text = _HEADING.sub("", text)
    if "__" in text:
        text = _UNDERLINE.sub("", text)
    if "\\" in text:
        text = _LATEX_WRAP.sub(r"\1", text)
        text = _LATEX_WRAP.sub(r"\1", text)
        text = _LATEX_DELIM.sub(" ", text)
    return _WHITESPACE.sub(_one_space, text)


def _one_space(m: re.Match[str]) -> str:
    """The canonical form of one whitespace run: its line breaks (at most a paragraph's), else a space."""
    return "\n" * min(m.group().count("\n"), 2) or " "


_PAREN = re.compile(r"[ \t]*\([^()]*\)")
_SPACES = re.compile(r"\s+")
#: a leading concentration that a reply may leave out when it names the option
_QUALIFIER = re.compile(r"^(?:\d+(?:\.\d+)?[ \t]*%[ \t]*)+")
_TRIM = " \t.。;；,，:!！"
_NEG_BEFORE = re.compile(
    r"(?:\bnot|\brather than|\binstead of|\bother than|\bnor|n't|\bthan|\bexcept|\bunlike|\bavoid"
    r"|不是|而非|并非|不选|不用|排除|除了|避免|不宜|不能用)[^,.;:，。；：!?！？]*$"
)
_NEG_AFTER = re.compile(
    r"^[ \t]*(?:is|are|was)(?:n't|[ \t]+not|[ \t]+(?:incorrect|wrong|unlikely|ruled))"
    r"|^[ \t]*should[ \t]+(?:be[ \t]+avoided|not)"
    r"|^[ \t]*(?:也|亦|都|均|则)?(?:不|错误|是错|并不|并非|非)"
)
#: options named as a list ("esmolol and nitroglycerin would worsen …"): a verdict after the last is on all
_JOINED = re.compile(r"[ \t]*(?:,|、|/|和|与|及|或|and|or|as[ \t]+well[ \t]+as)[ \t]*")
#: a word that ranks the noun after it: "the best drug", "the strongest predictor", "the specific X"
_RANKING = (r"(?:best|most[ \t]+[a-z]+|first|preferred|appropriate|correct|right|specific|first-line|single|optimal"
            r"|[a-z]{2,}est)")
#: one word, maybe hyphenated once (never a run of hyphens: each of them would start a new scan)
_WORD = r"[a-z]+(?:-[a-z]+)?"
_HEAD = re.compile(
    r"(?:answer|choice|option)(?:[ \t]+here)?[ \t]*(?:is|would be|should be|will be|:)(?![a-z])"
    r"|(?<![a-z])i(?:'d| would| will)?[ \t]+(?:choose|select|pick|go with|recommend|use)(?![a-z])"
    rf"|(?<![a-z])(?:{_RANKING}[ \t]+{_WORD}|{_WORD}[ \t]+of[ \t]+choice)(?:[ \t]+here)?[ \t]+(?:is|would be|should be)(?![a-z])"
    r"|答案(?:是|为|:)|(?<!不)选(?:择|用)?(?!项)|首选|(?:应(?:该|当)?|宜)(?:使用|用|选用|给予|首选)"
)
#: after an option's text, what makes it the answer: "phenylephrine is the drug to give", "X is the strongest predictor"
_TAIL_HEAD = re.compile(
    rf"[ \t]+is[ \t]+the[ \t]+(?:(?:{_RANKING}[ \t]+)+{_WORD}|{_WORD}[ \t]+(?:to[ \t]+(?:give|use|choose)|of[ \t]+choice)"
    r"|choice|answer|option)(?![a-z])(?![ \t]+to[ \t]+(?:cause|avoid))"
)
_SENTENCE_END = re.compile(r"\n|。|;|[.!?](?:\s|$)")
_CLAUSE_END = re.compile(r"\n|。|;|,|、|[.!?](?:\s|$)")
_LIST_WORDS = re.compile(r"(?:[\s,、/.;。]|和|与|及|或者|或|以及|and|or|as well as)*")
#: a clause that adds an alternative ("ketamine also works", "布比卡因也可以", "or both")
_ALTERNATIVE = re.compile(
    r"(?<![a-z])(?:also|too|as well|either|or|and|both|but|however|although|though|while|whereas)(?![a-z])"
    r"|也|亦|同样|都|均|或|和|但|而|然而|不过"
)
#: a line labelled with an option letter: a short reply with two of them lists options, it does not name one
_OPTION_LINE = re.compile(r"^[ \t]*[(\[]?[a-h][)\].:、]", re.MULTILINE)
#: a short reply that says it does not know names an option without choosing it
_UNSURE = re.compile(r"not sure|unsure|uncertain|don't know|do not know|unclear|不确定|不知道|不清楚|拿不准")


def _alnum_ascii(char: str) -> bool:
    return char.isascii() and char.isalnum()


class OptionIndex:
    """Lower-cased option texts of one question, searched as literals (no per-question regex to compile).
    Built lazily: most replies commit to a letter without ever naming an option's text."""

    def __init__(self, items: tuple[tuple[str, str], ...]) -> None:
        self.letters = frozenset(letter for letter, _ in items)
        self._items = items

    @cached_property
    def _item_forms(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((letter, tuple(_forms(str(text)))) for letter, text in self._items)

    @cached_property
    def forms(self) -> dict[str, tuple[str, ...]]:
        return dict(self._item_forms)

    @cached_property
    def letter_of(self) -> dict[str, str]:
        owners = [(form, letter) for letter, forms in self._item_forms for form in forms]
        return {form: letter for form, letter in owners if {other for f, other in owners if f == form} == {letter}}

    @cached_property
    def longest_first(self) -> tuple[str, ...]:  # as an alternation would try them
        return tuple(sorted(self.letter_of, key=len, reverse=True))

    def _bounded(self, lower: str, form: str, at: int) -> bool:  # "vitamin a" is not inside "vitamin ab"
        end = at + len(form)
        inside_before = _alnum_ascii(form[0]) and at > 0 and _alnum_ascii(lower[at - 1])
        return not inside_before and not (_alnum_ascii(form[-1]) and end < len(lower) and _alnum_ascii(lower[end]))

    def is_text_of(self, letter: str, lower: str) -> bool:
        """Is ``lower`` (lower-cased, stripped) exactly the text of option ``letter``, however short ("6%")?"""
        return any(form == lower for form in self.forms.get(letter, ())) or any(
            own == letter and _SPACES.sub(" ", normalize(str(text)).lower()).strip(_TRIM) == lower
            for own, text in self._items
        )

    def match_at(self, lower: str, at: int) -> bool:
        return any(lower.startswith(form, at) and self._bounded(lower, form, at) for form in self.longest_first)

    def find_all(self, lower: str, start: int = 0, stop: int | None = None) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, form) of option texts in ``lower[start:stop]``, left to right."""
        stop = len(lower) if stop is None else stop
        found: list[tuple[int, int, str]] = []
        for form in self.longest_first:
            at = lower.find(form, start, stop)
            while at != -1:
                if self._bounded(lower, form, at):
                    found.append((at, at + len(form), form))
                at = lower.find(form, at + 1, stop)
        found.sort(key=lambda hit: (hit[0], -(hit[1] - hit[0])))
        kept: list[tuple[int, int, str]] = []
        for hit in found:
            if not kept or hit[0] >= kept[-1][1]:
                kept.append(hit)
        return kept


def _forms(text: str) -> list[str]:
    """Lower-cased forms an option may be named by: whole text, and without parentheticals.

    >>> _forms("Dantrolene (Dantrium).")
    ['dantrolene (dantrium)', 'dantrolene']
    """
    full = _SPACES.sub(" ", normalize(text).lower()).strip(_TRIM)
    bare = _PAREN.sub("", full).strip(_TRIM)
    core = _QUALIFIER.sub("", bare)  # "20% lipid emulsion" is named "lipid emulsion"
    return [f for f in dict.fromkeys((full, bare, core)) if len(f) >= (3 if f.isascii() else 2)]


option_index = lru_cache(maxsize=4096)(OptionIndex)  # one index per question


def mentions(lower: str, index: OptionIndex, start: int = 0, end: int | None = None) -> list[str]:
    """Letters whose option text is named, not negated, in ``lower[start:end]`` (in order).

    >>> mentions("bupivacaine, not lidocaine", option_index((("A", "Lidocaine"), ("B", "Bupivacaine"))))
    ['B']
    """
    hits = index.find_all(lower, start, end)
    negated = [bool(_NEG_AFTER.match(lower[stop: stop + 24])) for _, stop, _ in hits]
    for i in range(len(hits) - 2, -1, -1):  # "A and B would worsen": the verdict after B is A's too
        if negated[i + 1] and _JOINED.fullmatch(lower, hits[i][1], hits[i + 1][0]):
            negated[i] = True
    return [index.letter_of[form] for (at, _, form), neg in zip(hits, negated, strict=True)
            if not (neg or _NEG_BEFORE.search(lower, max(start, at - 24), at))]


def _named_in_first_clause(lower: str, index: OptionIndex, start: int, end: int) -> str | None:
    """The option named right after a head when it ends its clause and what follows is not a list
    of options ("首选罗哌卡因，布比卡因心脏毒性较大" → 罗哌卡因; not "I'd pick propofol, ketamine or …").

    >>> idx = option_index((("A", "Propofol"), ("B", "Ketamine")))
    >>> _named_in_first_clause("i'd pick propofol, ketamine is worse", idx, 8, 36)
    'A'
    """
    hits = index.find_all(lower, start, end)
    if not hits or lower[start:hits[0][0]].strip(" \t:") or mentions(lower, index, hits[0][0], hits[0][1]) == []:
        return None
    brk = _CLAUSE_END.match(lower, hits[0][1])
    if brk is None:
        return None
    nxt = _CLAUSE_END.search(lower, brk.end())
    tail_end = min(nxt.start() if nxt else len(lower), end)
    named_after = index.find_all(lower, brk.end(), tail_end)
    edges = [brk.end(), *(edge for h0, h1, _ in named_after for edge in (h0, h1)), tail_end]
    pieces = zip(edges[::2], edges[1::2], strict=True)  # what lies around the options named after the break
    if all(_LIST_WORDS.fullmatch(lower[a:b]) for a, b in pieces) or _ALTERNATIVE.search(lower, brk.end(), tail_end):
        return None
    return index.letter_of[hits[0][2]]


def named_as_answer(
    lower: str, index: OptionIndex, rejected: frozenset[str] = frozenset(), after: int = -1
) -> tuple[str | None, str] | None:
    """``(letter, "option_text")`` if the options named as the answer by their text ("phenylephrine
    is the drug to give", "0.25 is the most appropriate choice") after offset ``after`` are one
    option, ``(None, "none_ambiguous")`` if several, ``None`` if none.

    >>> named_as_answer("0.25 is the most appropriate choice for", option_index((("A", "0.25"), ("B", "0.5"))))
    ('A', 'option_text')
    """
    named = [index.letter_of[form] for at, stop, form in index.find_all(lower)
             if at > after and _TAIL_HEAD.match(lower, stop) and not _NEG_BEFORE.search(lower, max(0, at - 24), at)]
    if not named:
        return None
    return (named[0], "option_text") if len(set(named)) == 1 and named[0] not in rejected else (None, "none_ambiguous")


def goes_round(stated: list[str]) -> bool:
    """Whether answers stated in turn go round rather than correct one another: three different
    ones, or one stated again after another replaced it.

    >>> goes_round(["A", "C", "C"]), goes_round(["A", "B", "A"]), goes_round(["B", "D", "C"])
    (False, True, True)
    """
    changes = [letter for i, letter in enumerate(stated) if i == 0 or stated[i - 1] != letter]
    return len(set(changes)) >= 3 or len(changes) != len(set(changes))


def by_option_text(text: str, index: OptionIndex, rejected: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """The letter whose text alone the reply names as its answer, as ``(letter, method)``, after the
    last answer-like head ("the answer is …", "首选…"); a short reply is read whole unless it says
    it is unsure. Options in ``rejected`` (judged wrong by letter) never count. Exactly one option
    must be named, otherwise ``(None, "none_ambiguous" | "none_no_match")``."""
    lower = text.lower()
    heads = list(_HEAD.finditer(lower))
    last = heads[-1] if heads else None
    named_first = named_as_answer(lower, index, rejected, -1 if last is None else last.start())
    if named_first is not None:  # "… ; phenylephrine is the drug to give." after any head
        return named_first
    if last is not None:
        named_by_head = []  # the end of each head's sentence and the options it names
        for head in heads:
            stop = _SENTENCE_END.search(lower, head.end())
            end = min(stop.start() if stop else len(lower), head.end() + 200)
            named_by_head.append((end, set(mentions(lower, index, head.end(), end)) - rejected))
        if goes_round([next(iter(named)) for _, named in named_by_head if len(named) == 1]):
            return None, "none_ambiguous"
        end, named = named_by_head[-1]
        if len(named) == 1:
            return named.pop(), "option_text"
        first = _named_in_first_clause(lower, index, last.end(), end)
        if first is not None and first not in rejected:  # "首选罗哌卡因，布比卡因心脏毒性较大"
            return first, "option_text"
    if len(text) <= 250 and not _UNSURE.search(lower) and len(_OPTION_LINE.findall(lower)) < 2:
        named = set(mentions(lower, index)) - rejected
        if len(named) == 1:
            return named.pop(), "option_text"
        if len(named) > 1:
            return None, "none_ambiguous"
    return None, "none_no_match"
