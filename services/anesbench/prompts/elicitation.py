"""The follow-up turn that asks a model for its final letter (``--elicit``).

Named and versioned like a prompt template (``elicitation/anesbench-elicit-1.json``); its name and the
sha256 of the file are stored with the run, so a changed wording is a different configuration::

    {"name": "anesbench-elicit-1", "en": "Therefore, among {letters}, ...", "zh": "因此，在{letters}中，..."}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from anesbench.prompts.template import Message, letter_list

ELICITATION_PROMPT = "anesbench-elicit-1"


@dataclass(frozen=True, slots=True)
class ElicitationPrompt:
    name: str
    sha256: str
    turns: dict[str, str]  # language -> the user turn, with {letters}

    def follow_up(self, messages: Sequence[Message], reply: str, letters: tuple[str, ...],
                  language: str) -> list[Message]:
        """The original conversation, the model's reply as its turn, and the question for the letter.

        >>> prompt = load_elicitation_prompt()
        >>> prompt.follow_up([{"role": "user", "content": "Q?"}], "I think...", ("A", "B"), "en")[-1]["content"]
        'Therefore, among A and B, which one is your final answer? Reply with that letter only.'
        """
        turn = self.turns[language].replace("{letters}", letter_list(letters, language))
        return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": turn}]


def load_elicitation_prompt() -> ElicitationPrompt:
    raw = (resources.files("anesbench.prompts") / "elicitation" / f"{ELICITATION_PROMPT}.json").read_bytes()
    data = json.loads(raw)
    return ElicitationPrompt(name=data["name"], sha256=hashlib.sha256(raw).hexdigest(),
                             turns={language: data[language] for language in ("en", "zh")})
