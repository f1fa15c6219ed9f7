"""The result type of the grader and the bounded set of method names it can report.

>>> Extraction("C", "final_answer_phrase").pred
'C'
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every method :func:`anesbench.grading.extract_answer` can return. It is a Prometheus label,
#: so the set is closed: add a name here before any code returns it.
METHODS: tuple[str, ...] = (
    # a letter was found
    "final_answer_phrase",  # "The answer is C", "答案：C", "故选C", "I would choose A", "C is the correct answer"
    "boxed",  # \boxed{C}
    "json",  # {"answer": "C"}
    "answer_tag",  # <answer>C</answer>
    "conclusion",  # "Therefore, C.", "所以C。", "... is C." as the closing sentence
    "lone_letter",  # the reply (or its first/last line) is just "C", "(C)", "**C**"
    "letter_with_text",  # the reply (or its first/last line) is "C. Dantrolene"
    "verdict",  # option-by-option verdicts with exactly one option judged correct
    "option_text",  # the reply names one option's text only ("The best choice is dantrolene.")
    "elicited",  # not the rules': the model's own letter, asked for in a second turn where they found none
    # no answer
    "none_empty",  # nothing visible after removing <think> blocks
    "none_truncated",  # finish_reason "length" and no committed final answer
    "none_refusal",  # "I cannot provide medical advice", "我无法回答这个问题"
    "none_ambiguous",  # two different answers stated as final, or two options judged correct
    "none_invalid_choice",  # the committed letter is not one of the question's options
    "none_no_match",  # nothing the grader is willing to read as an answer
)


@dataclass(frozen=True, slots=True)
class Extraction:
    """The letter a reply committed to (``None`` for no answer) and the method that decided it.

    >>> Extraction(None, "none_refusal")
    Extraction(pred=None, method='none_refusal')
    """

    pred: str | None
    method: str
