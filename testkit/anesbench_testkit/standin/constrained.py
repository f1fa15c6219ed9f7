"""The stand-in's answer to a follow-up turn ("which letter is your final answer?") and the constraints it honours.

A flavour says which serving engine the stand-in plays, hence which constraint fields it applies
(as the real engine does) and which it ignores (as a server does with fields it does not know):

* ``sglang``: ``regex``, ``ebnf``, ``response_format``; ``/get_server_info`` names a grammar backend;
* ``llamacpp``: ``grammar`` (GBNF), ``response_format``; ``/props`` answers;
* ``vllm``: ``guided_choice``, ``response_format``; ``/v1/models`` says ``owned_by: vllm``;
* ``response_format``: only ``response_format`` (a hosted API);
* ``none``: nothing; the reply is free text (``unconstrained_reply``: a terse letter, or a chatty sentence).

A constraint that is applied is applied exactly: the reply is a string the regex, grammar, choice
list or JSON schema allows, and one the stand-in cannot satisfy is refused with HTTP 400 (a real
engine refuses a malformed grammar too). Nothing here is lenient: an ignored constraint yields the
same free text a model would write.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

FLAVOURS = ("sglang", "llamacpp", "vllm", "response_format", "none")
UNCONSTRAINED_REPLIES = ("terse", "chatty")
HONOURED = {
    "sglang": ("regex", "ebnf", "response_format"),
    "llamacpp": ("grammar", "response_format"),
    "vllm": ("guided_choice", "response_format"),
    "response_format": ("response_format",),
    "none": (),
}
ALTERNATIVES = re.compile(r'^\s*root\s*::=\s*("[^"\\]*"(?:\s*\|\s*"[^"\\]*")*)\s*$')
QUOTED = re.compile(r'"([^"\\]*)"')
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Unsatisfiable(ValueError):
    """A constraint the stand-in applies but cannot satisfy (or cannot parse): answered with HTTP 400."""


def is_follow_up(messages: list[dict[str, Any]]) -> bool:
    """A conversation that goes on after a reply of the model: [..., user, assistant, user]."""
    return len(messages) >= 3 and messages[-2].get("role") == "assistant" and messages[-3].get("role") == "user"


def applies_constraint(body: dict[str, Any], flavour: str) -> bool:
    """Whether the request carries a constraint this engine applies (to any request, not only follow-ups)."""
    return any(field in body for field in HONOURED[flavour])


def _allowed(field: str, value: Any) -> list[str]:
    """Every reply a constraint allows, when it allows finitely many short strings."""
    if field == "regex":
        try:
            pattern = re.compile(str(value))
        except re.error as exc:
            raise Unsatisfiable(f"invalid regex: {exc}") from None
        return [letter for letter in LETTERS if pattern.fullmatch(letter)]
    if field in ("ebnf", "grammar"):
        match = ALTERNATIVES.match(str(value))
        if match is None:
            raise Unsatisfiable(f"unsupported {field}: the stand-in takes root ::= \"A\" | \"B\" ... only")
        return QUOTED.findall(match.group(1))
    if field == "guided_choice":
        if not isinstance(value, list) or not all(isinstance(choice, str) for choice in value):
            raise Unsatisfiable("guided_choice must be a list of strings")
        return list(value)
    try:
        schema = value["json_schema"]["schema"]
        enum = schema["properties"]["answer"]["enum"]
        if value["type"] != "json_schema" or schema["required"] != ["answer"]:
            raise KeyError("answer")
    except (KeyError, TypeError) as exc:
        raise Unsatisfiable(f"unsupported response_format (the stand-in takes an 'answer' enum only): {exc}") from None
    return [str(choice) for choice in enum]


def follow_up_reply(body: dict[str, Any], flavour: str, letter: str, unconstrained: str,
                    rng: random.Random) -> tuple[str, str]:
    """The content and finish reason of a follow-up reply whose model's own final choice is ``letter``."""
    for field in HONOURED[flavour]:
        if field not in body:
            continue
        allowed = _allowed(field, body[field])
        if not allowed:
            raise Unsatisfiable(f"{field} allows no reply the stand-in can give")
        choice = letter if letter in allowed else allowed[0]  # a constrained model takes its best allowed token
        if field == "response_format":
            return json.dumps({"answer": choice}), "stop"
        return choice, "stop"
    if unconstrained == "terse":
        return rng.choice((f"{letter}", f"{letter}.", f"({letter})")), "stop"
    text = rng.choice((
        f"Based on my analysis above, the best answer is {letter}, because it fits the findings.",
        f"综上所述，我认为正确答案是{letter}，因为它最符合题意。",
    ))
    limit = int(body.get("max_tokens") or 2048) * 4  # about four characters a token
    return (text[:limit], "length") if len(text) > limit else (text, "stop")
