"""``POST /v1/completions`` with ``logprobs``: the stand-in's next-token alternatives after an answer cue.

The letter the stand-in answers (the same choice as a chat reply to the question) gets most of the
mass, spelled ``" B"`` (most) and ``"B"``; the other letters a little each; a newline and a word take
some too, and a share is left to tokens not listed (a real top list never holds all the mass). The
reply comes in the shape of the server the plan plays (``logprobs``): ``openai`` (the legacy
completions shape of SGLang, vLLM and hosted APIs), ``llamacpp`` (its ``logprobs.content`` list), or a
server that cannot score: ``absent`` (a reply without logprobs), ``refuse`` (HTTP 400) or ``chat-only``
(HTTP 404, a chat model on a hosted API).
"""

from __future__ import annotations

import math
from typing import Any

LOGPROB_SHAPES = ("openai", "llamacpp", "absent", "refuse", "chat-only")
UNLISTED = 0.2  # the share of the mass left to tokens below the top list


def alternatives(options: dict[str, str], letter: str | None) -> list[tuple[str, float]]:
    """Every token the stand-in would list, most probable first, as (token, log-probability)."""
    weights: dict[str, float] = {"\n": 0.5, " The": 0.3}
    for option in options:
        weight = 6.0 if option == letter else 1.0
        weights[f" {option}"], weights[option] = weight, weight / 10
    total = sum(weights.values()) / (1 - UNLISTED)
    return sorted(((token, math.log(weight / total)) for token, weight in weights.items()), key=lambda t: -t[1])


def completion_choice(shape: str, top: list[tuple[str, float]], listed: int) -> dict[str, Any]:
    """The reply's one choice: the most probable token generated, ``listed`` alternatives (0: none asked)."""
    token, logprob = top[0]
    shown = top[:listed]
    if shape == "llamacpp" and listed:
        logprobs: dict[str, Any] | None = {"content": [{"token": token, "logprob": logprob, "top_logprobs": [
            {"token": text, "logprob": value} for text, value in shown]}]}
    elif shape == "openai" and listed:
        logprobs = {"tokens": [token], "token_logprobs": [logprob], "text_offset": [0],
                    "top_logprobs": [dict(shown)]}
    else:
        logprobs = None
    return {"index": 0, "text": token, "logprobs": logprobs, "finish_reason": "length"}
