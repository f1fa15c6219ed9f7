"""Precompiled patterns for explicit final-answer constructs, in English and Chinese.

Patterns run on the *lower-cased* normalized text (``re.IGNORECASE`` costs 4-5x) and are tried
only at the offsets of literal anchors (see ``_scan.py``), so none starts with a look-behind; the
checks this leaves out (the original case of a letter, the character before a word, negations
and hypotheticals around the match) are made in ``_final.py``. Every pattern captures the
committed letter(s) in the group ``grp``.

>>> EN_ANSWER.search("the final answer is (c).").group("grp")
'(c)'
"""

from __future__ import annotations

import re

M = re.MULTILINE
#: one letter, maybe bracketed (case and the English word "a" are vetted later)
ONE = r"[(\[]?[ \t]*[a-h](?![a-z0-9])[ \t]*[)\]]?"
_JOIN = r"(?:,|、|/|&|\+|\bor\b|\band\b|和|或者|或|以及|及|与)"
#: one letter or several joined by "or" / "and" / "、" (several distinct letters = ambiguous)
GRP = rf"(?P<grp>{ONE}(?:[ \t]*{_JOIN}[ \t]*(?:option[ \t]+|choice[ \t]+|选项)?{ONE}){{0,7}})"
SINGLE = rf"(?P<grp>{ONE})"
#: what may follow a bare letter for it to end a sentence ("Therefore, C." but not "C is wrong")
_END = r"(?=[ \t]*(?:[.!;。！；]|$|\n|[-–—:][ \t]|\(|,[ \t]*(?:which|as|because|since)\b))"
_ZH_END = r"(?:项|选项)?(?=[ \t]*(?:[.!;,。！；，]|$|\n))"
_ADV = (r"(?:(?:therefore|thus|actually|clearly|definitely|indeed|then|still|now|obviously|probably|"
        r"most[ \t]+likely|likely|in[ \t]+fact|simply|undoubtedly|certainly|really|either)[ \t,]+)*")

# ---------------------------------------------------------------- English
EN_ANSWER = re.compile(
    r"(?P<head>answer|option|choice|selection)(?![a-z])"
    r"(?:[ \t]+(?:to|for)[ \t]+(?:this|the)[ \t]+(?:question|item|problem|case|mcq))?"
    r"(?:[ \t]+(?:here|overall|then|therefore|thus|in[ \t]+this[ \t]+case))?"
    r"(?P<sep>[ \t]*(?:is|would[ \t]+be|should[ \t]+be|must[ \t]+be|will[ \t]+be|remains|=|:|-|–|—|->|→)(?![a-z])"
    r"|[ \t]*\n)"
    rf"\s*:?\s*{_ADV}(?:(?:option|choice|letter|answer)[ \t]*)?:?[ \t]*" + GRP,
    M,
)
EN_LETTER_FIRST = re.compile(
    r"(?P<grp>[a-h])[)\]]?(?![a-z0-9])"
    r"(?P<between>[ \t]*\([^()\n]{1,80}\)|[ \t]*[.):\-–—][ \t]*[^\n.;:()]{1,60}?)?"
    r"[ \t]+(?P<verb>is|would[ \t]+be|seems[ \t]+to[ \t]+be|appears[ \t]+to[ \t]+be|represents|remains)[ \t]+"
    r"(?:(?:therefore|thus|clearly|definitely|indeed|then|undoubtedly|probably|likely|most[ \t]+likely)[ \t]+)?"
    r"(?:(?:the|my|our)[ \t]+"
    r"(?:(?:single|most|best|correct|right|final|appropriate|accurate|likely|preferred|only|fitting|suitable)[ \t]+){0,3}"
    r"(?:answer|option|choice)"
    # "(B) is the most appropriate", "C is best": a superlative without the noun
    r"|(?:the[ \t]+)?(?:best|most[ \t]+(?:appropriate|likely|accurate|suitable|correct|fitting)|correct[ \t]+one))(?![a-z])"
)
EN_BOTH = re.compile(
    r"(?P<grp>[a-h](?:[ \t]*(?:,|and|&|or)[ \t]*[a-h]){1,7})(?![a-z0-9])[ \t]+"
    r"(?:are|could[ \t]+be|may[ \t]+be|might[ \t]+be|would[ \t]+be)[ \t]+(?:both[ \t]+|all[ \t]+|equally[ \t]+)?"
    r"(?:correct|right|valid|acceptable|(?:the[ \t]+)?(?:correct[ \t]+)?answers)(?![a-z])"
)
EN_CHOOSE = re.compile(
    r"(?:(?:i|we)(?:[ \t]+(?:would|will|should|must|shall)|'d|'ll)?"
    r"(?:[ \t]+(?:definitely|still|therefore|thus|confidently|now|then))?"
    r"[ \t]+(?:choose|select|pick|go[ \t]+with|opt[ \t]+for|mark|circle)"
    r"|let(?:'s|[ \t]+us)[ \t]+go[ \t]+with"
    r"|(?:change|switch|revise|correct|update)[ \t]+(?:my[ \t]+)?(?:answer|choice|selection)[ \t]+to)"
    r"[ \t]+(?:option[ \t]+|choice[ \t]+|answer[ \t]+)?" + GRP
)
EN_NOT_BUT = re.compile(
    r"not[ \t]+(?:option[ \t]+)?" + ONE
    + r"[ \t]*,?[ \t]*but[ \t]+(?:rather[ \t]+|instead[ \t]+)?(?:option[ \t]+)?" + GRP
)
#: "[Answer] C", "[Correct answer]: B", "[答案]C", "[正确答案] A" (【】 are normalized to [])
BRACKET_ANSWER = re.compile(
    r"\[[ \t]*(?:(?:(?:final|correct|best|right)[ \t]+)?answer|(?:最终|正确|参考|标准|本题)?答案)[ \t]*\]"
    r"[ \t]*:?[ \t]*(?:\n\s*)?(?:option[ \t]+|choice[ \t]+|选项)?" + GRP
)
#: "C fits best", "A fits the clinical picture best", "B matches best"
EN_FITS_BEST = re.compile(
    r"(?P<grp>[a-h])[)\]]?(?![a-z0-9])(?:[ \t]*\([^()\n]{1,60}\))?[ \t]+(?:fits|matches|suits)"
    r"(?:[ \t]+[^.;:!?\n]{0,50}?)?[ \t]+best(?![a-z])"
)
#: "the option that best fits this scenario is A"
EN_BEST_FIT_IS = re.compile(
    r"(?:option|choice|answer)[ \t]+(?:that|which)[ \t]+(?:best[ \t]+)?(?:fits|matches|suits|describes|explains)"
    r"(?:[ \t]+best)?(?:[ \t]+[^.;:!?\n]{0,60}?)?[ \t]+is[ \t]+(?:option[ \t]+|choice[ \t]+)?" + GRP
)
#: "… the most likely cause of the described scenario is:\nD. Right endobronchial intubation": a
#: superlative phrase ending in "is" with a letter after it (vetted: the letter must be followed by
#: its own option's text, so "the best options are listed below: A. …" does not count)
EN_SUPERLATIVE_IS = re.compile(
    r"(?:most[ \t]+(?:appropriate|likely|suitable|accurate|correct|probable|effective|fitting)"
    r"|best|preferred|first-line|optimal)(?![a-z])[^\n.;:?!]{0,80}?[ \t]"
    r"(?:is|would[ \t]+be|should[ \t]+be|will[ \t]+be)[ \t]*:?[ \t]*(?:\n\s*)?(?:option[ \t]+|choice[ \t]+)?" + SINGLE
)
#: "最可能的原因是：\nD. 右主支气管插管" (vetted the same way)
ZH_SUPERLATIVE_IS = re.compile(
    r"最(?:可能|合适|恰当|适合|适宜|佳|有效|符合|准确)[^\n。;:?!]{0,40}?(?:是|为)[ \t]*:?[ \t]*(?:\n\s*)?(?:选项)?" + SINGLE
)
#: "it could be A or C": two alternatives, so no single answer
EN_MAYBE = re.compile(
    r"(?:could|might|may)[ \t]+be[ \t]+(?:either[ \t]+)?(?:option[ \t]+)?"
    r"(?P<grp>[a-h](?![a-z0-9])[ \t]*,?[ \t]*or[ \t]+"
    r"(?:(?:it|that)[ \t]+(?:could|might|may)[ \t]+be[ \t]+)?(?:option[ \t]+)?[a-h])(?![a-z0-9])"
)
#: a hypothetical ("if the answer were A", "A would be the answer if …") is not a commitment
HYPOTHETICAL_BEFORE = re.compile(r"(?:^|[^a-z])(?:if|whether|unless|suppose|supposing|assuming)[ \t][^.;:!?,\n]*$")
HYPOTHETICAL_AFTER = re.compile(r"[ \t,]+(?:if|when|unless|only[ \t]+if|provided|in[ \t]+case)(?![a-z])")
#: "Options A, B and D can be excluded, leaving C." / "只剩下C"
EN_LEAVES = re.compile(
    r"leav(?:ing|es)[ \t]+(?:us[ \t]+with[ \t]+)?(?:only[ \t]+)?(?:option[ \t]+)?" + SINGLE + _END, M
)
EN_ITS = re.compile(
    r"(?:it'?s|it[ \t]+is|it[ \t]+must[ \t]+be|it[ \t]+should[ \t]+be|that'?s|that[ \t]+would[ \t]+be)"
    r"[ \t]+(?:(?:actually|definitely|clearly|therefore|thus|really|indeed|obviously|surely)[ \t]+)?"
    r"(?:option[ \t]+|choice[ \t]+)?" + SINGLE + r"(?=[ \t]*(?:[.!;]|$|\n|[-–—:][ \t]|\())",
    M,
)
EN_CONCLUSION = re.compile(
    r"(?:therefore|thus|hence|so|consequently|accordingly|in[ \t]+conclusion|in[ \t]+summary|overall"
    r"|ultimately|finally)[ \t]*[,:]?[ \t]*(?:the[ \t]+answer[ \t]+)?(?:option[ \t]+|choice[ \t]+)?" + SINGLE + _END,
    M,
)
#: "... the highest class — D." / "→ C" closing the reply
DASH_END = re.compile(r"(?:[-–—:→]|=>)[ \t]*" + SINGLE + r"[ \t]*[.!。]?[ \t]*\Z")
#: weakest: a sentence that ends "... is B." ("The most cardiotoxic agent is B.")
EN_IS_LETTER = re.compile(r"is[ \t]+(?:option[ \t]+|choice[ \t]+)?" + SINGLE + r"(?=[ \t]*(?:[.!]|$))", M)

# ---------------------------------------------------------------- Chinese
_ZH_FILL = (r"(?:应该|应当|应|就|显然|无疑|当然|肯定|必然|很明显|明显|最可能|可能|也|便|则|确定|才|一定"
            r"|依然|仍然|仍|还是|选)*")
ZH_ANSWER = re.compile(
    rf"(?:答案|(?<![回解作问])答(?=[ \t]*:)){_ZH_FILL}"
    r"(?:(?P<nl>[ \t]*(?:是|为)?[ \t]*:?[ \t]*\n\s*)|[ \t]*(?:是|为|选择|选)?[ \t]*:?[ \t]*)(?:选项|选)?[ \t]*" + GRP
)
ZH_CHOOSE = re.compile(r"选(?:择|用)?[ \t]*(?:选项|答案)?[ \t]*" + GRP)
ZH_LETTER_FIRST = re.compile(
    r"(?P<grp>[a-h])(?![a-z0-9])[ \t]*(?:选项|项)?[ \t]*(?:才是|就是|是|为)[ \t]*(?:本题的?)?"
    r"(?:(?:正确|最佳|最合适|最恰当|最准确|标准)的?)?(?:答案|选项)"
)
ZH_BOTH = re.compile(
    r"(?P<grp>[a-h](?:[ \t]*(?:和|与|、|及|,|或)[ \t]*[a-h]){1,7})(?![a-z0-9])"
    r"(?:项|选项)?[ \t]*(?:都|均|皆|也都)(?:是)?(?:正确|对)"
)
ZH_CORRECT_IS = re.compile(
    r"(?:正确|最佳|最合适|最恰当)的?(?:答案|选项|选择|是)[ \t]*(?:应该|应当|应|就|才)?(?:是|为|:)?[ \t]*(?:选项)?" + GRP
)
ZH_CORRECTION = re.compile(r"(?:更正|改正|修正|改)(?:为|成|:)[ \t]*(?:答案)?(?:是|为)?[ \t]*(?:选项)?" + GRP)
ZH_NOT_BUT = re.compile(r"而是[ \t]*(?:选项)?" + SINGLE + _ZH_END)
ZH_SHOULD = re.compile(r"应(?:该|当)?(?:是|为)[ \t]*(?:选项)?" + SINGLE + _ZH_END)
ZH_CONCLUSION = re.compile(
    r"(?:所以|因此|因而|故而|故|综上所述|综上|总之|由此可见|最终)[ \t]*[,:]?[ \t]*(?:应该|应)?(?:是|为)?[ \t]*"
    r"(?:选项)?" + SINGLE + _ZH_END,
    M,
)
_ZH_FIT = r"(?:符合|合适|恰当|适宜|贴切|适合|准确)"
#: "B最符合", "A选项最符合题干要求", "B项最为合适", "相比之下，A更符合", "以A最为适宜"
ZH_BEST_FIT = re.compile(GRP + rf"(?:项|选项)?[ \t]*(?:最为|最|更为|更){_ZH_FIT}")
#: "最符合题意的是C", "最恰当的处理是A", "最符合的选项为B", "最合适的是A选项"
ZH_FIT_IS = re.compile(
    rf"最(?:为)?{_ZH_FIT}(?:题意|题干(?:要求|描述)?|本题|该患者(?:的情况)?|临床(?:需要)?)?的?"
    r"(?:选项|答案|选择|处理|措施|药物|方法|是)*[ \t]*(?:为|是|:)?[ \t]*(?:选项)?" + GRP
)
#: "可能是B，也可能是C": two alternatives, so no single answer
ZH_MAYBE = re.compile(
    r"(?:可能|也许|或许)(?:是|选)[ \t]*(?:选项)?(?P<grp>[a-h](?![a-z0-9])[^。.!\n]{0,12}?(?:也|或者?|还)(?:有)?"
    r"(?:可能|也许|或许)?(?:是|选)[ \t]*(?:选项)?[a-h])(?![a-z0-9])"
)
ZH_LEAVES = re.compile(r"(?:只剩下?|剩下|剩余)[ \t]*(?:的是)?[ \t]*(?:选项)?" + SINGLE + _ZH_END)
ZH_IS_LETTER = re.compile(r"是[ \t]*(?:选项)?" + SINGLE + _ZH_END, M)
#: what may not come right before a Chinese commitment word ("不选A", "如果选A", "并不是A")
ZH_NOT_BEFORE = ("不", "不应", "不能", "不会", "不该", "不要", "别", "如果", "若", "假如", "假设", "可", "可以", "是否",
               "不是", "并非", "比", "于")

# ---------------------------------------------------------------- structured
BOXED = re.compile(r"\\boxed[ \t]*\{(?P<c>(?:[^{}]|\{[^{}]*\}){0,200})\}")
JSON = re.compile(
    r"[\"'](?:final_answer|finalanswer|answer|correct_answer|correct_option|choice|option|letter|最终答案|正确答案|答案)"
    r"[\"'][ \t]*:[ \t]*(?P<c>\[[^\]]{0,200}\]|\"[^\"]{0,200}\"|'[^']{0,200}')"
)
TAG = re.compile(r"<answer>(?P<c>[^<]{0,200})</answer>")
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
