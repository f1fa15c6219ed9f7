"""The follow-up turn (``--elicit``): ask the model, in the same conversation, for its final letter.

``unanswered`` asks where the rules found no committed answer (a reply cut off at ``max_tokens``
included), ``all`` asks after every reply. Where the follow-up yields a letter, that letter is the
result's ``pred`` with method ``elicited``: the model's own choice, obtained by construction where the
server constrains decoding. Under ``all`` this holds even where the rules found a letter, which stays
in ``pred_rules``, so the run measures how often the rules agree with the model. A follow-up that
yields no valid letter leaves the rules' verdict; one whose request fails after its retries does too,
with the error kept in ``elicitation_error`` (the result is not an error: the reply was usable).

A result is stored with ``elicitation = 'pending'`` before its follow-up is sent and stored again when
it comes back, so a crash in between keeps the reply, and the resumed run sends the follow-up only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from anesbench.dataset import Item
from anesbench.errors import InferenceError
from anesbench.inference.client import Completion
from anesbench.inference.constraints import follow_up_body, follow_up_max_tokens, read_letter
from anesbench.prompts import ElicitationPrompt, PromptTemplate
from anesbench.store.records import ResultRow

ELICITED = "elicited"  # the method of a letter the follow-up turn gave


@dataclass(frozen=True, slots=True)
class Elicitation:
    """One run's follow-up requests: the server's constraint, the prompt, the model."""

    constraint: str  # a kind from anesbench.inference.constraints.CONSTRAINTS
    prompt: ElicitationPrompt
    model: str

    def params(self) -> str:
        """The follow-up's request parameters, as stored with each result (JSON)."""
        return json.dumps({"prompt": self.prompt.name, "prompt_sha256": self.prompt.sha256,
                           "constraint": self.constraint, "max_tokens": follow_up_max_tokens(self.constraint),
                           "temperature": 0.0}, sort_keys=True)

    def request(self, template: PromptTemplate, item: Item, row: ResultRow, seed: int | None) -> bytes:
        """The follow-up request of a result: its conversation, the reply, the question for the letter."""
        letters = tuple(item.texts[row.language].options)
        messages = self.prompt.follow_up(template.render(item, row.language), row.response or "", letters,
                                         row.language)
        return follow_up_body(self.model, messages, letters, self.constraint, seed)

    def mark_pending(self, row: ResultRow) -> None:
        row.elicitation, row.elicitation_params = "pending", self.params()

    def apply(self, row: ResultRow, item: Item, reply: Completion | InferenceError) -> None:
        """The follow-up came back: its letter, read strictly, replaces the rules' verdict. One that got no
        reply after its retries leaves the verdict, and keeps the error."""
        if isinstance(reply, InferenceError):
            row.elicitation, row.elicitation_error, row.elicitation_attempts = "failed", str(reply)[:2000], reply.attempts
            return
        row.elicitation, row.elicitation_error = "done", None
        row.elicitation_response = reply.content
        row.elicitation_attempts, row.elicitation_latency_s = reply.attempts, reply.latency
        row.elicitation_prompt_tokens = reply.prompt_tokens
        row.elicitation_completion_tokens = reply.completion_tokens
        letter = read_letter(reply.content, tuple(item.texts[row.language].options), self.constraint)
        if letter is None:
            row.pred, row.method = row.pred_rules, row.method_rules
        else:
            row.pred, row.method = letter, ELICITED
        row.correct = row.pred == item.answer
