"""Remove reasoning traces (``<think>…</think>``) so that only the visible answer is graded.

>>> strip_think("<think>maybe A?</think>The answer is C.")
'The answer is C.'
"""

from __future__ import annotations

import re

_TAG = re.compile(r"<(/?)(?:think|thinking|reasoning)(?(1)\s*)>", re.IGNORECASE)


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
    # One pass over the tags (linear time even for thousands of unclosed tags).
    pieces: list[str] = []
    position = 0
    inside = False
    for tag in _TAG.finditer(text):
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
