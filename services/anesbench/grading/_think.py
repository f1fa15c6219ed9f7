"""Remove reasoning traces (``<think>…</think>``) so that only the visible answer is graded.

>>> strip_think("<think>maybe A?</think>The answer is C.")
'The answer is C.'
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
_CLOSE = re.compile(r"</(?:think|thinking|reasoning)\s*>", re.IGNORECASE)


def strip_think(text: str) -> str:
    """Return the visible text of a reply: reasoning blocks removed, surrounding space stripped.

    * closed ``<think>…</think>`` blocks are removed wherever they are;
    * a stray ``</think>`` (the opening tag was in the prompt, DeepSeek-R1 style) means
      everything before it was reasoning;
    * an unclosed ``<think>`` means the rest of the reply is reasoning that never finished,
      so the answer is absent (a leading one leaves ``""``).

    >>> strip_think("<think>\\nhmm, A or C")
    ''
    >>> strip_think("okay so C</think>\\n\\nAnswer: C")
    'Answer: C'
    """
    if "<" not in text:
        return text.strip()
    text = _BLOCK.sub("\n", text)
    closes = list(_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end():]
    opened = _OPEN.search(text)
    if opened is not None:
        text = text[: opened.start()]
    return text.strip()
