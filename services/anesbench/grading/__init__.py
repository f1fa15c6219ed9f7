"""Answer grader: which option letter a model's reply committed to, or ``None`` ("no answer").

Unlike the AnesBench paper's extractor, which always guesses a letter by fuzzy matching, this
grader never guesses: an unparseable, refusing, truncated or ambiguous reply grades as ``None``,
and every result names the method that decided it (:data:`METHODS`, a bounded set).

>>> extract_answer({"A": "Propofol", "B": "Ketamine", "C": "Dantrolene"}, "答案：Ｃ")
Extraction(pred='C', method='final_answer_phrase')
"""

from __future__ import annotations

from anesbench.grading._extract import METHODS, Extraction, extract_answer
from anesbench.grading._normalize import strip_think

EXTRACTOR_VERSION = "2026.12.3"  # bump whenever a reply may grade differently; recorded with every run
__all__ = ["METHODS", "Extraction", "extract_answer", "strip_think"]
