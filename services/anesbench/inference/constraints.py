"""Constrained decoding for the follow-up turn: what a server supports, the request for it, the strict reading.

Detected once per run, strongest first (each one makes the reply a letter by construction):

1. SGLang (``GET /get_server_info`` names its ``grammar_backend``): ``ebnf`` on xgrammar and
   llguidance, whose native form is a grammar, ``regex`` on any other backend (every one takes it);
2. llama.cpp (``GET /props`` with ``total_slots`` or ``default_generation_settings``): ``grammar`` (GBNF);
3. vLLM (``GET {base}/models`` lists the model ``owned_by: "vllm"``): ``guided_choice``;
4. a probe request with ``response_format`` (a JSON schema whose ``answer`` is an enum of letters):
   kept when the reply is that JSON with an allowed letter;
5. ``none``: an unconstrained short request.

Whatever the kind, the reply is read strictly (:func:`read_letter`): one valid letter, nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from anesbench.errors import HttpError
from anesbench.inference.client import GenerationParams, request_body
from anesbench.inference.endpoint import server_root
from anesbench.inference.sizing import get_json
from anesbench.inference.transport import HttpOptions, HttpPool

log = logging.getLogger(__name__)

CONSTRAINTS = ("ebnf", "regex", "grammar", "guided_choice", "response_format", "none")
PROBE_TIMEOUT = 30.0  # the probe is a real (tiny) generation
GRAMMAR_BACKENDS = {"xgrammar", "llguidance"}
# Tokens the follow-up may use: a letter is one or two tokens; the JSON object a dozen; unconstrained,
# room for "(B)." but not for a sentence.
MAX_TOKENS = {"response_format": 16, "none": 8}
LETTER_TOKENS = 4
TRIM = " \t\r\n.,;:!?'\"`*()[]{}<>。．，、；：！？（）【】「」"
PROBE_LETTERS = ("A", "B")
PROBE_QUESTION = "Which letter comes first in the alphabet, A or B? Answer with the letter."


def follow_up_max_tokens(kind: str) -> int:
    return MAX_TOKENS.get(kind, LETTER_TOKENS)


def constraint_fields(kind: str, letters: Sequence[str]) -> dict[str, Any]:
    """The request fields that hold decoding to ``letters`` on a server of this kind."""
    if kind == "regex":
        return {"regex": "(" + "|".join(letters) + ")"}
    if kind in ("ebnf", "grammar"):
        return {kind: "root ::= " + " | ".join(f'"{letter}"' for letter in letters)}
    if kind == "guided_choice":
        return {"guided_choice": list(letters)}
    if kind == "response_format":
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": list(letters)}},
                  "required": ["answer"], "additionalProperties": False}
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "final_answer", "strict": True, "schema": schema}}}
    return {}


def follow_up_body(model: str, messages: Sequence[dict[str, str]], letters: Sequence[str], kind: str,
                   seed: int | None) -> bytes:
    """The follow-up chat request: greedy, short, constrained to ``letters`` as the server allows."""
    params = GenerationParams(max_tokens=follow_up_max_tokens(kind), temperature=0.0)
    return request_body(model, messages, params, seed, **constraint_fields(kind, letters))


def read_letter(content: str, letters: Sequence[str], kind: str) -> str | None:
    """The one valid letter the follow-up replied, else None; nothing else is read as an answer."""
    if kind == "response_format":
        try:
            data = json.loads(content)
        except ValueError:
            return None
        if not isinstance(data, dict) or set(data) != {"answer"} or not isinstance(data["answer"], str):
            return None
        content = data["answer"]
    letter = content.strip(TRIM)
    return letter if len(letter) == 1 and letter in letters else None


async def detect_constraint(endpoint: str, model: str, api_key: str | None = None,
                            options: HttpOptions | None = None) -> str:
    """The strongest constraint the server at ``endpoint`` (an OpenAI base URL) applies; ``none`` if none."""
    root = server_root(endpoint)
    prefix = endpoint.rstrip("/")[len(root):]  # the base URL's path below the root: "/v1" or ""
    async with HttpPool(root, timeout=PROBE_TIMEOUT, api_key=api_key, options=options) as http:
        info = await get_json(http, "/get_server_info")
        if isinstance(info, dict) and isinstance(info.get("grammar_backend"), str):
            backend = info["grammar_backend"]
            if backend != "none":
                return "ebnf" if backend in GRAMMAR_BACKENDS else "regex"
        props = await get_json(http, "/props")
        if isinstance(props, dict) and ("total_slots" in props or "default_generation_settings" in props):
            return "grammar"
        if (served_models(await get_json(http, f"{prefix}/models")) or {}).get(model) == "vllm":
            return "guided_choice"
        # One tiny request with a JSON-schema enum: a server that ignores response_format answers in prose,
        # one that refuses it answers 4xx.
        body = follow_up_body(model, [{"role": "user", "content": PROBE_QUESTION}], PROBE_LETTERS, "response_format", None)
        try:
            response = await http.request("POST", f"{prefix}/chat/completions", body)
            reply = (json.loads(response.body)["choices"][0]["message"]["content"] or "") if response.status == 200 else ""
        except (HttpError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.info("the response_format probe failed (%s): the follow-up goes unconstrained", exc)
            return "none"
        return "none" if read_letter(reply, PROBE_LETTERS, "response_format") is None else "response_format"


def served_models(listing: object) -> dict[str, object] | None:
    """Model id -> ``owned_by`` of an OpenAI ``/models`` reply; None when the reply is not in that shape."""
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    return {entry["id"]: entry.get("owned_by") for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)}
