"""Chat prompt templates, and the follow-up turn that asks a model for its final letter (``--elicit``).

A template is a JSON file (the bundled default is ``templates/anesbench-cot.json``)::

    {"name": "my-template",
     "en": {"system": "...", "user": "Question: {question}\\nOptions:\\n{options}"},
     "zh": {"system": "...", "user": "题目：{question}\\n选项：\\n{options}"}}

``{question}`` is the stem and ``{options}`` the lettered options, one ``A. text`` per line; both are
required. ``{letters}`` (optional) is the item's own option letters as a list in the section's language
(:func:`letter_list`). The ``system`` message may be empty (it is then not sent). The follow-up turn is a file
too (``elicitation/anesbench-elicit-1.json``: a user turn per language, with ``{letters}``). Each file's name
and sha256 are stored with the run, so a changed wording is a different configuration.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from anesbench.dataset.model import LANGUAGES, Item
from anesbench.errors import InvalidInput

DEFAULT_TEMPLATE = "anesbench-cot"
LOGPROB_TEMPLATE = "anesbench-logprob"  # the default of --scoring logprobs: a completion prompt ending in an answer cue
ELICITATION_PROMPT = "anesbench-elicit-1"
BUNDLED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PLACEHOLDERS = {"question", "options"}
OPTIONAL_PLACEHOLDERS = {"letters"}
LIST_WORDS = {"en": (", ", " and "), "zh": ("、", "和")}  # language -> (separator, before the last)

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    name: str
    sha256: str
    messages: dict[str, tuple[str, str]]  # language -> (system, user)

    def render(self, item: Item, language: str) -> list[Message]:
        """Chat messages for ``item`` in ``language``."""
        system, user = self.messages[language]
        text = item.texts[language]
        options = "\n".join(f"{letter}. {option}" for letter, option in text.options.items())
        body = (
            user.replace("{letters}", letter_list(tuple(text.options), language))
            .replace("{question}", text.question)
            .replace("{options}", options)
        )
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": body}]

    def require(self, languages: tuple[str, ...]) -> None:
        missing = [lang for lang in languages if lang not in self.messages]
        if missing:
            raise InvalidInput(f"prompt template '{self.name}' has no '{', '.join(missing)}' section")


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


def letter_list(letters: tuple[str, ...], language: str) -> str:
    """``A, B, C and D`` (English) or ``A、B、C和D`` (Chinese): the letters as a list, "and" before the last.

    >>> letter_list(("A", "B", "C", "D"), "en"), letter_list(("A", "B"), "en"), letter_list(("A", "B", "C"), "zh")
    ('A, B, C and D', 'A and B', 'A、B和C')
    """
    separator, last = LIST_WORDS[language]
    if len(letters) < 2:
        return "".join(letters)
    return separator.join(letters[:-1]) + last + letters[-1]


def parse_template(raw: bytes, source: str) -> PromptTemplate:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{source}: invalid JSON in prompt template: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a prompt template is a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{source}: field 'name': missing or empty")
    messages: dict[str, tuple[str, str]] = {}
    for language in LANGUAGES:
        section = data.get(language)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise InvalidInput(f"{source}: field '{language}': expected an object with 'system' and 'user'")
        system, user = section.get("system", ""), section.get("user")
        if not isinstance(system, str):
            raise InvalidInput(f"{source}: field '{language}.system': expected text")
        if not isinstance(user, str) or not user.strip():
            raise InvalidInput(f"{source}: field '{language}.user': missing or empty")
        try:
            found = {field for _, field, _, _ in string.Formatter().parse(user) if field is not None}
        except ValueError as exc:
            raise InvalidInput(f"{source}: field '{language}.user': {exc}") from None
        if not PLACEHOLDERS <= found <= PLACEHOLDERS | OPTIONAL_PLACEHOLDERS:
            raise InvalidInput(
                f"{source}: field '{language}.user': needs exactly the placeholders {{question}} and {{options}} "
                f"(and optionally {{letters}}), found {sorted(found) or 'none'}"
            )
        messages[language] = (system, user)
    if not messages:
        raise InvalidInput(f"{source}: needs an 'en' or 'zh' section")
    return PromptTemplate(name=name.strip(), sha256=hashlib.sha256(raw).hexdigest(), messages=messages)


def load_template(spec: str | None = None, *, allow_files: bool = True, scoring: str = "generate") -> PromptTemplate:
    """Load a bundled template by name, or (when ``allow_files``) any template file by path; without one,
    the default of the ``scoring``."""
    spec = spec or (LOGPROB_TEMPLATE if scoring == "logprobs" else DEFAULT_TEMPLATE)
    if BUNDLED_NAME.match(spec):
        bundled = resources.files(__name__) / "templates" / f"{spec}.json"
        if bundled.is_file():
            return parse_template(bundled.read_bytes(), f"template {spec}")
    if not allow_files:
        raise InvalidInput(f"prompt_template: no bundled template named {spec!r}")
    path = Path(spec)
    if not path.is_file():
        raise InvalidInput(f"no bundled template or file named '{spec}'", field="prompt_template")
    return parse_template(path.read_bytes(), str(path))


def load_elicitation_prompt() -> ElicitationPrompt:
    raw = (resources.files(__name__) / "elicitation" / f"{ELICITATION_PROMPT}.json").read_bytes()
    data = json.loads(raw)
    return ElicitationPrompt(name=data["name"], sha256=hashlib.sha256(raw).hexdigest(),
                             turns={language: data[language] for language in ("en", "zh")})
