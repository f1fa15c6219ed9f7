"""Option-letter probabilities from a server's next-token log-probabilities (``--scoring logprobs``).

The first generated token's alternatives come in one of two shapes: the OpenAI legacy completions
shape (SGLang, vLLM, hosted APIs) ``choices[0].logprobs.top_logprobs == [{token: logprob, ...}, ...]``,
one map per generated token; or llama.cpp's server ``choices[0].logprobs.content == [{"top_logprobs":
[{"token": ..., "logprob": ...}, ...]}, ...]``.

A letter's probability is the sum over its spellings in that list: every token that reads as the letter
once NFKC-normalised (``Ａ`` is ``A``) and stripped of spaces and an opening parenthesis (``" A"``, ``"A"``,
``"(A"``). A letter with no spelling in the list is less probable than every token in it: its upper bound
is the smallest probability returned. Such a letter takes its bound, the item's letters are normalised
to sum to 1 and the distribution is marked incomplete. The answer is the one most probable letter; when
two letters tie (a missing letter's bound equals the best present one, or no letter was returned at
all) there is none, so an incomplete item is graded only when its top letter exceeds every bound.

>>> probs, complete = letter_probs([(" B", -0.5), ("B", -2.0), (" A", -1.5), ("\\n", -3.0)], ("A", "B", "C"))
>>> {letter: round(p, 3) for letter, p in probs.items()}, complete, best_letter(probs)
({'A': 0.22, 'B': 0.731, 'C': 0.049}, False, 'B')
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

Top = list[tuple[str, float]]  # (token text, log-probability), as the server listed them


def top_logprobs(choice: Mapping[str, Any]) -> Top:
    """The first token's alternatives of a ``/completions`` choice; ValueError when it has none."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        raise ValueError("the reply carries no logprobs")
    try:
        if logprobs.get("content"):
            first = logprobs["content"][0]["top_logprobs"]
            top = [(str(entry["token"]), float(entry["logprob"])) for entry in first]
        else:
            top = [(str(token), float(value)) for token, value in logprobs["top_logprobs"][0].items()]
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"the reply's logprobs are not in a known shape ({type(exc).__name__})") from None
    if not top:
        raise ValueError("the reply's top logprobs are empty")
    return top


def letter_probs(top: Top, letters: Sequence[str]) -> tuple[dict[str, float], bool]:
    """The item's letters -> probability (normalised, missing letters at their bound), and whether none was missing."""
    mass = dict.fromkeys(letters, 0.0)
    for token, logprob in top:  # "▁" is SentencePiece's space
        letter = unicodedata.normalize("NFKC", token).replace("\u2581", " ").strip().lstrip("(").strip()
        if letter in mass:
            mass[letter] += math.exp(logprob)
    bound = min(math.exp(logprob) for _, logprob in top)
    missing = [letter for letter, value in mass.items() if value == 0.0]
    for letter in missing:
        mass[letter] = bound
    total = sum(mass.values())
    return {letter: value / total for letter, value in mass.items()}, not missing


def best_letter(probs: Mapping[str, float]) -> str | None:
    """The most probable letter, or None when the top is shared (it is then not certain)."""
    ranked = sorted(probs.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None
    return max(probs, key=lambda letter: probs[letter])
