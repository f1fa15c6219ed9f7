"""Reading the answer letter: constrained decoding for the follow-up turn (what a server supports, the
request for it, the strict reading) and option-letter probabilities for logprob scoring.

Detected once per run, strongest first (each one makes the reply a letter by construction):

1. SGLang (``GET /get_server_info`` names its ``grammar_backend``): ``ebnf`` on xgrammar and
   llguidance, whose native form is a grammar, ``regex`` on any other backend (every one takes it);
2. llama.cpp (``GET /props`` with ``total_slots`` or ``default_generation_settings``): ``grammar`` (GBNF);
3. vLLM (``GET {base}/models`` lists the model ``owned_by: "vllm"``): ``guided_choice``;
4. a probe request with ``response_format`` (a JSON schema whose ``answer`` is an enum of letters):
   kept when the reply is that JSON with an allowed letter;
5. ``none``: an unconstrained short request.

Whatever the kind, the reply is read strictly (:func:`read_letter`): one valid letter, nothing else.

Logprob scoring (``--scoring logprobs``) reads the first generated token's alternatives
(:func:`~anesbench.inference.client.top_logprobs`). A letter's probability is the sum over its spellings
in that list: every token that reads as the letter once NFKC-normalised (``Ａ`` is ``A``) and stripped of
spaces and an opening parenthesis (``" A"``, ``"A"``, ``"(A"``). A letter with no spelling in the list is
less probable than every token in it: its upper bound is the smallest probability returned. Such a letter
takes its bound, the item's letters are normalised to sum to 1 and the distribution is marked incomplete.
The answer is the one most probable letter; when two letters tie (a missing letter's bound equals the
best present one, or no letter was returned at all) there is none, so an incomplete item is graded only
when its top letter exceeds every bound.

>>> probs, complete = letter_probs([(" B", -0.5), ("B", -2.0), (" A", -1.5), ("\\n", -3.0)], ("A", "B", "C"))
>>> {letter: round(p, 3) for letter, p in probs.items()}, complete, best_letter(probs)
({'A': 0.22, 'B': 0.731, 'C': 0.049}, False, 'B')
"""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from anesbench.errors import HttpError
from anesbench.inference.client import GenerationParams, Top, request_body
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
        backend = info.get("grammar_backend") if isinstance(info, dict) else None
        if isinstance(backend, str) and backend != "none":
            return "ebnf" if backend in GRAMMAR_BACKENDS else "regex"
        props = await get_json(http, "/props")
        if isinstance(props, dict) and ("total_slots" in props or "default_generation_settings" in props):
            return "grammar"
        if (served_models(await get_json(http, f"{prefix}/models")) or {}).get(model) == "vllm":
            return "guided_choice"
        # One tiny request with a JSON-schema enum: a server that ignores response_format answers in prose,
        # one that refuses it answers 4xx.
        messages = [{"role": "user", "content": PROBE_QUESTION}]
        try:
            response = await http.request("POST", f"{prefix}/chat/completions",
                                          follow_up_body(model, messages, PROBE_LETTERS, "response_format", None))
            reply = json.loads(response.body)["choices"][0]["message"]["content"] if response.status == 200 else ""
        except (HttpError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.info("the response_format probe failed (%s): the follow-up goes unconstrained", exc)
            return "none"
        return "none" if read_letter(reply or "", PROBE_LETTERS, "response_format") is None else "response_format"


def served_models(listing: object) -> dict[str, object] | None:
    """Model id -> ``owned_by`` of an OpenAI ``/models`` reply; None when the reply is not in that shape."""
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    return {entry["id"]: entry.get("owned_by") for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)}


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
