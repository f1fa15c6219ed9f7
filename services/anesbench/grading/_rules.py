"""The rule table: every construct the grader reads as a committed answer, as data.

A :class:`Rule` is a pattern, the method it reports, its strength tier, the checks that veto a match
(bit flags, see below) and its own example replies: ``positive`` ones it decides, ``negative`` ones
where its pattern matches but a veto (or a later rule) must keep it from committing; the tests run
every example through :func:`anesbench.grading.extract_answer`. Every pattern captures the committed
letter(s) in the group ``grp`` (value rules: the value in ``c``). No rule names a domain word: rules
describe the shapes of answers.

Patterns run on the *lower-cased* normalized reply (``re.IGNORECASE`` costs 4-5x) and are tried
only where one of their literal ``anchors`` occurs (none starts with a look-behind): scanning a 2 kB
reply with a pattern that starts with a common letter costs ~50 µs, ``str.find`` of a few anchors
plus ``pattern.match`` at the hits ~1 µs.

>>> re.match(GRP, "(c) or d").group("grp")
'(c) or d'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

STRONG, MEDIUM, WEAK = 0, 1, 2
#: the checks a match must pass (plain int flags: enum.Flag measured 1.65x slower per reply)
LOWER_OK = 1  # a lower-case first letter may count (vetted against the English word "a")
NEG_ADJ = 2  # a negating adjective before the head ("the wrong answer is A") vetoes
HEADING = 4  # a head on its own line counts only as a heading ("## Answer\nC") or with a verb
OPTION_REF = 8  # the letter must read as an option reference ("Vitamin A", "A型" do not)
BETWEEN = 16  # text between the letter and its verb must be that option's own text
WORD_START = 32  # the match may not start inside a word
ZH_NOT_BEFORE = 64  # "不", "如果", "是否" … right before vetoes
AT_END = 128  # searched in the last characters of the reply only
ZH_ONLY = 256  # skipped for pure-ASCII replies
HYPOTHETICAL = 512  # "if the answer were A", "A would be the answer if …" veto
OWN_TEXT = 1024  # the letter must be followed by its own option's text
COLON_LINE = 2048  # the letter line must close the reply's option lines and not be negated

#: the letter first: "C is the correct answer", "C fits best", "A、C最符合", "C是正确答案"
_LETTER_FIRST_EN = (
    r"(?P<between>[ \t]*\([^()\n]{1,80}\)|[ \t]*[.):\-–—][ \t]*[^\n.;:()]{1,60}?)?"
    r"[ \t]+(?P<verb>is|would[ \t]+be|seems[ \t]+to[ \t]+be|appears[ \t]+to[ \t]+be|represents|remains)[ \t]+"
    r"(?:(?:therefore|thus|clearly|definitely|indeed|then|undoubtedly|probably|likely|most[ \t]+likely)[ \t]+)?"
    r"(?:(?:the|my|our)[ \t]+"
    r"(?:(?:single|most|best|correct|right|final|appropriate|accurate|likely|preferred|only|fitting|suitable)[ \t]+){0,3}"
    r"(?:answer|option|choice)"
    r"|(?:the[ \t]+)?(?:best|most[ \t]+(?:appropriate|likely|accurate|suitable|correct|fitting)|correct[ \t]+one))(?![a-z])"
)
_FITS_BEST = r"(?:[ \t]*\([^()\n]{1,60}\))?[ \t]+(?:fits|matches|suits)(?:[ \t]+[^.;:!?\n]{0,50}?)?[ \t]+best(?![a-z])"
_ZH_FIT = r"(?:符合|合适|恰当|适宜|贴切|适合|准确)"
#: Chinese words that do not negate what follows ("最符合题意的是C", not "最符合的不是C")
_ZH_WORDS = r"(?:(?![不非否没])[\u4e00-\u9fff])"
_ZH_FILL = (r"(?:应该|应当|应|就|显然|无疑|当然|肯定|必然|很明显|明显|最可能|可能|也|便|则|确定|才|一定"
            r"|依然|仍然|仍|还是|选)*")

EN = {"A": "Propofol", "B": "Ketamine", "C": "Dantrolene", "D": "Succinylcholine"}
ZH = {"A": "丙泊酚", "B": "氯胺酮", "C": "丹曲林", "D": "琥珀胆碱"}


@dataclass(frozen=True, slots=True)
class Example:
    """A reply and the letter a careful reader says it committed to (``None``: no answer)."""

    reply: str
    expected: str | None
    choices: tuple[tuple[str, str], ...] = tuple(EN.items())
    finish_reason: str = "stop"


def zh(reply: str, expected: str | None) -> Example:
    """An example answering the Chinese options."""
    return Example(reply, expected, tuple(ZH.items()))


@dataclass(frozen=True, slots=True)
class Rule:
    """One construct the grader reads as a commitment (see the module docstring)."""

    name: str
    pattern: re.Pattern[str]
    method: str
    tier: int
    checks: int
    anchors: tuple[str, ...]
    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    value: str = ""  # value rules (boxed, JSON, tag): the literal that must occur; the value is group ``c``


def rule(name: str, pattern: str, method: str, tier: int, checks: int, anchors: tuple[str, ...],
         positive: tuple[Example, ...], negative: tuple[Example, ...], value: str = "") -> Rule:
    """A :class:`Rule` with its pattern compiled."""
    return Rule(name, re.compile(pattern), method, tier, checks, anchors, positive, negative, value)


#: ``anchors`` value of rules that start with the letter: tried at every capital A-H of the reply
CAPS: tuple[str, ...] = ()
_FINAL, _CONCL = "final_answer_phrase", "conclusion"

RULES: tuple[Rule, ...] = (
    rule("answer_phrase",
         r"(?m)(?P<head>answer|option|choice|selection)(?![a-z])"
         r"(?:[ \t]+(?:to|for)[ \t]+(?:this|the)[ \t]+(?:question|item|problem|case|mcq))?"
         r"(?:[ \t]+(?:here|overall|then|therefore|thus|in[ \t]+this[ \t]+case))?"
         r"(?P<sep>[ \t]*(?:is|would[ \t]+be|should[ \t]+be|must[ \t]+be|will[ \t]+be|remains|=|:|-|–|—|->|→)(?![a-z])"
         r"|[ \t]*\n)"
         rf"\s*:?\s*{ADV}(?:(?:option|choice|letter|answer)[ \t]*)?:?[ \t]*{GRP}",
         _FINAL, STRONG, WORD_START | LOWER_OK | NEG_ADJ | HEADING | HYPOTHETICAL,
         ("answer", "option", "choice", "selection"),
         (Example("The final answer is (c).", "C"), Example("Answer: A or C", None),
          Example("## Answer\nC", "C")),
         (Example("The wrong answer is B; propofol is what I'd pick.", "A"),
          Example("If the answer were B, the patient would improve.", None),
          Example("Let's evaluate each option:\nOption A is plausible.", None))),
    rule("letter_first",
         rf"(?P<grp>[a-h])[)\]]?(?![a-z0-9])(?:{_LETTER_FIRST_EN}|{_FITS_BEST})",
         _FINAL, STRONG, OPTION_REF | BETWEEN | HYPOTHETICAL, CAPS,
         (Example("C is the correct answer.", "C"), Example("B fits the picture best.", "B"),
          Example("C (dantrolene) is the most appropriate.", "C")),
         (Example("Vitamin A is the most likely.", None), Example("C. Propofol is the best choice.", None),
          Example("A would be the answer if the patient were awake.", None))),
    rule("several_correct",
         r"(?P<grp>[a-h](?:[ \t]*(?:,|and|&|or|和|与|、|及|或)[ \t]*[a-h]){1,7})(?![a-z0-9])"
         r"(?:[ \t]+(?:are|could[ \t]+be|may[ \t]+be|might[ \t]+be|would[ \t]+be)[ \t]+(?:both[ \t]+|all[ \t]+|equally[ \t]+)?"
         r"(?:correct|right|valid|acceptable|(?:the[ \t]+)?(?:correct[ \t]+)?answers)(?![a-z])"
         r"|(?:项|选项)?[ \t]*(?:都|均|皆|也都)(?:是)?(?:正确|对))",
         _FINAL, STRONG, OPTION_REF, CAPS,
         (Example("A and C are both correct.", None), zh("A和C都正确。", None)),
         (Example("A and C are both wrong. The answer is B.", "B"), zh("A和C都错误，答案是B。", "B"))),
    rule("best_fit_is",
         r"(?:option|choice|answer)[ \t]+(?:that|which)[ \t]+(?:best[ \t]+)?(?:fits|matches|suits|describes|explains)"
         r"(?:[ \t]+best)?(?:[ \t]+[^.;:!?\n]{0,60}?)?[ \t]+is[ \t]+(?:option[ \t]+|choice[ \t]+)?" + GRP,
         _FINAL, STRONG, WORD_START | LOWER_OK | HYPOTHETICAL, ("option", "choice", "answer"),
         (Example("The option that best fits this scenario is d", "D"),),
         (Example("The option that best fits this scenario is a drug that relaxes muscle.", None),)),
    rule("bracket_answer",
         r"\[[ \t]*(?:(?:(?:final|correct|best|right)[ \t]+)?answer|(?:最终|正确|参考|标准|本题)?答案)[ \t]*\]"
         r"[ \t]*:?[ \t]*(?:\n\s*)?(?:option[ \t]+|choice[ \t]+|选项)?" + GRP,
         _FINAL, STRONG, LOWER_OK, ("[",),
         (Example("[Correct answer]: B", "B"), zh("【答案】C", "C")),
         (Example("[Answer] a drug that relaxes muscle", None), zh("【答案】C吗？我不确定。", None))),
    rule("superlative_is",
         r"(?:(?:most[ \t]+(?:appropriate|likely|suitable|accurate|correct|probable|effective|fitting)"
         r"|best|preferred|first-line|optimal)(?![a-z])[^\n.;:?!]{0,80}?[ \t](?:is|would[ \t]+be|should[ \t]+be|will[ \t]+be)"
         r"|最(?:可能|合适|恰当|适合|适宜|佳|有效|符合|准确)(?:(?![不非否没])[^\n。;:?!]){0,40}?(?:是|为))"
         r"[ \t]*:?[ \t]*(?:\n\s*)?(?:option[ \t]+|choice[ \t]+|选项)?" + SINGLE,
         _FINAL, STRONG, WORD_START | OWN_TEXT | HYPOTHETICAL | ZH_NOT_BEFORE,
         ("most", "best", "preferred", "first-line", "optimal", "最"),
         (Example("The most likely cause is:\nC. Dantrolene", "C"), zh("最可能的原因是：\nB. 氯胺酮", "B")),
         (Example("The best options are listed below:\nA. Propofol\nB. Ketamine", None),
          Example("The most likely cause is:\nC. Propofol", None))),
    rule("choose",
         r"(?:(?:i|we)(?:[ \t]+(?:would|will|should|must|shall)|'d|'ll)?"
         r"(?:[ \t]+(?:definitely|still|therefore|thus|confidently|now|then))?"
         r"[ \t]+(?:choose|select|pick|go[ \t]+with|opt[ \t]+for|mark|circle)"
         r"|let(?:'s|[ \t]+us)[ \t]+go[ \t]+with"
         r"|(?:change|switch|revise|correct|update)[ \t]+(?:my[ \t]+)?(?:answer|choice|selection)[ \t]+to)"
         r"[ \t]+(?:option[ \t]+|choice[ \t]+|answer[ \t]+)?" + GRP,
         _FINAL, STRONG, WORD_START | LOWER_OK,
         ("i ", "i'", "we ", "we'", "let", "change", "switch", "revise", "correct", "update"),
         (Example("I would choose C.", "C"), Example("Let me change my answer to b.", "B")),
         (Example("Hi choose wisely.", None), Example("I would choose a drug that relaxes muscle.", None))),
    rule("not_but",
         rf"not[ \t]+(?:option[ \t]+)?{ONE}[ \t]*,?[ \t]*but[ \t]+(?:rather[ \t]+|instead[ \t]+)?(?:option[ \t]+)?{GRP}",
         _FINAL, STRONG, WORD_START, ("not",),
         (Example("It is not A but C.", "C"),),
         (Example("It is knot A but C that I doubt.", None),)),
    rule("maybe_either",
         r"(?:(?:could|might|may)[ \t]+be[ \t]+(?:either[ \t]+)?(?:option[ \t]+)?|(?:可能|也许|或许)(?:是|选)[ \t]*(?:选项)?)"
         r"(?P<grp>[a-h](?![a-z0-9])(?:[ \t]*,?[ \t]*or[ \t]+(?:(?:it|that)[ \t]+(?:could|might|may)[ \t]+be[ \t]+)?"
         r"(?:option[ \t]+)?|[^。.!\n]{0,12}?(?:也|或者?|还)(?:有)?(?:可能|也许|或许)?(?:是|选)[ \t]*(?:选项)?)"
         r"[a-h])(?![a-z0-9])",
         _FINAL, STRONG, WORD_START, ("could", "might", "may", "可能", "也许", "或许"),
         (Example("It could be A or C.", None), zh("可能是B，也可能是C。", None)),
         (Example("It could be A or C. After thinking more, the answer is C.", "C"),
          zh("可能是B，也可能是C。最终答案：C", "C"))),
    rule("therefore_letter",
         r"(?:(?:it'?s|it[ \t]+is|it[ \t]+must[ \t]+be|it[ \t]+should[ \t]+be|that'?s|that[ \t]+would[ \t]+be)[ \t]+"
         r"(?:(?:actually|definitely|clearly|therefore|thus|really|indeed|obviously|surely)[ \t]+)?"
         r"|leav(?:ing|es)[ \t]+(?:us[ \t]+with[ \t]+)?(?:only[ \t]+)?"
         r"|(?:therefore|thus|hence|so|consequently|accordingly|in[ \t]+conclusion|in[ \t]+summary|overall"
         r"|ultimately|finally)[ \t]*[,:]?[ \t]*(?:the[ \t]+answer[ \t]+)?)"
         rf"(?:option[ \t]+|choice[ \t]+)?{SINGLE}{END}",
         _CONCL, MEDIUM, WORD_START,
         ("it", "that", "leav", "therefore", "thus", "hence", "so", "consequently", "accordingly", "in ", "overall",
          "ultimately", "finally"),
         (Example("Therefore, C.", "C"), Example("Options A, B and D can be excluded, leaving C.", "C"),
          Example("It's B.", "B")),
         (Example("Therefore, C is wrong.", None), Example("Also C.", None))),
    rule("dash_end",
         r"(?:[-–—:→]|=>)[ \t]*" + SINGLE + r"[ \t]*[.!。]?[ \t]*\Z",
         _CONCL, MEDIUM, AT_END, (),
         (Example("Dantrolene binds the ryanodine receptor — C.", "C"),),
         (Example("Dantrolene binds the ryanodine receptor — C is wrong.", None),)),
    rule("colon_then_letter_line",
         r"(?m):[ \t]*\n\s*(?:[-*•][ \t]*)?(?:option[ \t]+|选项)?[(\[]?[ \t]*(?P<grp>[a-h])[ \t]*[)\]]?"
         r"(?:[ \t]*(?:\.(?![a-z])|[:)、]|[-–—](?=[ \t]))|[ \t]*(?=\n|$))", _CONCL, MEDIUM,
         COLON_LINE, (":",),
         (Example("Based on this analysis, the finding that most reliably confirms it is:\nC. Dantrolene\n"
                  "This finding is directly related to the mechanism.", "C"),
          Example("After weighing each option, my conclusion is:\n\nB", "B"),
          Example("Putting it all together, the one to give is:\n- Option C – Dantrolene", "C"),
          zh("综上所述，最能确认的是：\nC. 丹曲林\n这是因为它直接作用于受体。", "C")),
         (Example("Here are the options:\nA. Propofol\nB. Ketamine\nC. Dantrolene\nD. Succinylcholine", None),
          Example("Let us consider this one:\nA. Propofol is not correct here.", None),
          Example("Let me look at the first option:\nA. Propofol\nIt is an induction agent, like ketamine.", None),
          Example("What I would give first is:\nA. Propofol is not it, it triggers nothing.", None),
          Example("The question asks:\nC. Propofol", None),
          Example("The marker that rises first in this setting is:\nC-reactive protein", None),
          Example("Which of the following helps here:\nC. A cooling blanket", None),
          Example("The options that remain open are:\nC. A cooling blanket\nand also D.", None),
          Example("After weighing each option, my conclusion is:\nC. Dantrolene\nThis is why.", None,
                  finish_reason="length"))),
    rule("is_letter",
         r"(?m)is[ \t]+(?:option[ \t]+|choice[ \t]+)?" + SINGLE + r"(?=[ \t]*(?:[.!]|$))",
         _CONCL, WEAK, WORD_START | OPTION_REF, ("is",),
         (Example("The most cardiotoxic agent is B.", "B"),),
         (Example("The gene is B-type.", None), Example("Which one is B? I am not sure.", None))),
    rule("zh_answer",
         rf"(?:答案|(?<![回解作问])答(?=[ \t]*:)){_ZH_FILL}"
         r"(?:(?P<nl>[ \t]*(?:是|为)?[ \t]*:?[ \t]*\n\s*)|[ \t]*(?:是|为|选择|选)?[ \t]*:?[ \t]*)(?:选项|选)?[ \t]*" + GRP,
         _FINAL, STRONG, ZH_ONLY | ZH_NOT_BEFORE | LOWER_OK, ("答",),
         (zh("答案：Ｃ", "C"), zh("正确答案应该是：\n\nB. 氯胺酮", "B"), zh("### 答案\nA", "A")),
         (zh("本题考查的是下列哪个答案\nA项错误，C项正确。", "C"), zh("答案A项错误。", None))),
    rule("zh_choose",
         r"选(?:择|用)?[ \t]*(?:选项|答案)?[ \t]*" + GRP,
         _FINAL, STRONG, ZH_ONLY | ZH_NOT_BEFORE | LOWER_OK, ("选",),
         (zh("故选C", "C"), zh("应选 C", "C")),
         (zh("不选A。", None), zh("如果选A，会有风险。", None))),
    rule("zh_letter_first",
         GRP + r"(?:项|选项)?[ \t]*(?:(?:才是|就是|是|为)[ \t]*(?:本题的?)?"
         rf"(?:(?:正确|最佳|最合适|最恰当|最准确|标准)的?)?(?:答案|选项)|(?:最为|最|更为|更){_ZH_FIT})",
         _FINAL, STRONG, ZH_ONLY | ZH_NOT_BEFORE | OPTION_REF, CAPS,
         (zh("C是正确答案。", "C"), zh("相比之下，A更符合。", "A"), zh("A、C最符合", None)),
         (zh("维生素A是正确答案吗？", None), zh("A型是最合适的。", None))),
    rule("zh_correct_is",
         r"(?:(?:正确|最佳|最合适|最恰当)的?(?:答案|选项|选择|是)[ \t]*(?:应该|应当|应|就|才)?(?:是|为|:)?"
         rf"|最(?:为)?{_ZH_FIT}{_ZH_WORDS}{{0,8}}?的?(?:选项|答案|选择|是)*[ \t]*(?:为|是|:)?)"
         r"[ \t]*(?:选项)?" + GRP,
         _FINAL, STRONG, ZH_ONLY | ZH_NOT_BEFORE | LOWER_OK, ("正确", "最"),
         (zh("正确答案为C", "C"), zh("最符合题意的是C", "C"), zh("最恰当的处理是A", "A")),
         (zh("最符合的不是C。", None), zh("最符合题意的是C吗？", None))),
    rule("zh_correction",
         r"(?:更正|改正|修正|改)(?:为|成|:)[ \t]*(?:答案)?(?:是|为)?[ \t]*(?:选项)?" + GRP,
         _FINAL, STRONG, ZH_ONLY, ("更正", "修正", "改"),
         (zh("答案是A。更正为C。", "C"),),
         (zh("更正为C吗？", None),)),
    rule("zh_conclusion",
         r"(?m)(?:而是|应(?:该|当)?(?:是|为)"
         r"|(?:所以|因此|因而|故而|故|综上所述|综上|总之|由此可见|最终)[ \t]*[,:]?[ \t]*(?:应该|应)?(?:是|为)?"
         r"|(?:只剩下?|剩下|剩余)[ \t]*(?:的是)?)[ \t]*(?:选项)?" + SINGLE + ZH_END,
         _CONCL, MEDIUM, ZH_ONLY | ZH_NOT_BEFORE,
         ("而是", "应", "所以", "因", "故", "综上", "总之", "由此", "最终", "只剩", "剩"),
         (zh("所以C。", "C"), zh("不是A，而是C。", "C"), zh("只剩下B。", "B")),
         (zh("所以C错误。", None), zh("不应是A。", None))),
    rule("zh_is_letter",
         r"(?m)是[ \t]*(?:选项)?" + SINGLE + ZH_END,
         _CONCL, WEAK, ZH_ONLY | ZH_NOT_BEFORE | OPTION_REF, ("是",),
         (zh("心脏毒性最强的是B。", "B"),),
         (zh("不是B。", None), zh("致病的是乙肝病毒B。", None))),
    rule("boxed", r"\\boxed[ \t]*\{(?P<c>(?:[^{}]|\{[^{}]*\}){0,200})\}", "boxed", STRONG, 0, (),
         (Example("\\boxed{C}", "C"), Example("\\boxed{\\text{Dantrolene}}", "C")),
         (Example("\\boxed{x}", None), Example("\\boxed{A, C}", None)), value="\\boxed"),
    rule("json",
         r"[\"'](?:final_answer|finalanswer|answer|correct_answer|correct_option|choice|option|letter|最终答案|正确答案|答案)"
         r"[\"'][ \t]*:[ \t]*(?P<c>\[[^\]]{0,200}\]|\"[^\"]{0,200}\"|'[^']{0,200}')",
         "json", STRONG, 0, (),
         (Example('{"answer": "C"}', "C"), Example('{"answer": ["B"]}', "B")),
         (Example('{"answer": "unknown"}', None), Example('{"answer": ["A", "C"]}', None)), value=":"),
    rule("answer_tag", r"<answer>(?P<c>[^<]{0,200})</answer>", "answer_tag", STRONG, 0, (),
         (Example("<answer>C</answer>", "C"),),
         (Example("<answer></answer>", None), Example("<answer>A or C</answer>", None)), value="<answer>"),
)

__all__ = ["CAPS", "RULES", "Example", "Rule"]
