"""The follow-up turn: what each server is found to support, the request for it, the strict reading of the reply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from anesbench.inference.constraints import constraint_fields, detect_constraint, follow_up_body, read_letter
from anesbench.prompts import load_elicitation_prompt
from anesbench_testkit.standin.constrained import Unsatisfiable, follow_up_reply
from anesbench_testkit.standin.faults import FaultPlan
from anesbench_testkit.standin.server import StandinServer, start

LETTERS = ("A", "B", "C", "D")


@pytest.fixture
async def standin() -> AsyncIterator[Callable[..., Any]]:
    """Start in-process stand-ins playing a given engine; each is stopped at the end."""
    runners = []

    async def make(**plan: Any) -> str:
        fault_plan = FaultPlan()
        fault_plan.update(plan)
        runner, port = await start(StandinServer(fault_plan), "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{port}/v1"

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(("flavour", "expected"), [
    ("sglang", "ebnf"), ("llamacpp", "grammar"), ("vllm", "guided_choice"),
    ("response_format", "response_format"), ("none", "none"),
])
async def test_each_server_is_found_to_support_its_strongest_constraint(
    standin: Callable[..., Any], flavour: str, expected: str
) -> None:
    assert await detect_constraint(await standin(constraints=flavour), "standin") == expected


async def test_an_sglang_without_a_grammar_backend_falls_back_to_the_probe(standin: Callable[..., Any]) -> None:
    # SGLang with slots hidden (no /get_server_info): the probe finds its response_format support
    assert await detect_constraint(await standin(constraints="sglang", report_slots=False), "standin") == \
        "response_format"


async def test_a_server_that_ignores_response_format_is_not_taken_for_one_that_applies_it(
    standin: Callable[..., Any]
) -> None:
    url = await standin(constraints="none", unconstrained_reply="chatty")
    assert await detect_constraint(url, "standin") == "none"


async def test_no_server_at_all_means_no_constraint() -> None:
    assert await detect_constraint("http://127.0.0.1:9/v1", "standin") == "none"


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("regex", "regex", "(A|B|C|D)"),
    ("ebnf", "ebnf", 'root ::= "A" | "B" | "C" | "D"'),
    ("grammar", "grammar", 'root ::= "A" | "B" | "C" | "D"'),
    ("guided_choice", "guided_choice", ["A", "B", "C", "D"]),
])
def test_the_follow_up_request_carries_the_constraint_of_its_kind(kind: str, field: str, value: Any) -> None:
    messages = [{"role": "user", "content": "q"}]
    body = json.loads(follow_up_body("m", messages, LETTERS, kind, None))
    assert body[field] == value
    assert (body["max_tokens"], body["temperature"], body["messages"]) == (4, 0.0, messages)
    assert not set(body) & ({"regex", "ebnf", "grammar", "guided_choice", "response_format"} - {field})


def test_a_response_format_follow_up_asks_for_an_enum_of_the_items_letters() -> None:
    body = json.loads(follow_up_body("m", [], ("A", "B", "C"), "response_format", 3))
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["A", "B", "C"] and schema["required"] == ["answer"]
    assert body["seed"] == 3 and body["max_tokens"] == 16


def test_an_unconstrained_follow_up_is_short_and_carries_no_constraint() -> None:
    body = json.loads(follow_up_body("m", [], LETTERS, "none", None))
    assert constraint_fields("none", LETTERS) == {} and body["max_tokens"] == 8


@pytest.mark.parametrize("reply", ["B", "B.", "(B)", " B\n", "**B**", "B。", "（B）"])
def test_a_bare_letter_with_punctuation_around_it_is_read(reply: str) -> None:
    assert read_letter(reply, LETTERS, "none") == "B"


@pytest.mark.parametrize("reply", [
    "", "b", "E", "AB", "B or C", "The answer is B.", "B because it fits", "答案是B", "B\nC", '{"answer": "B"}',
])
def test_anything_but_one_valid_letter_is_no_answer(reply: str) -> None:
    assert read_letter(reply, LETTERS, "none") is None


@pytest.mark.parametrize(("reply", "expected"), [
    ('{"answer": "C"}', "C"), ('{"answer":"C"}', "C"), ('{"answer": "E"}', None), ('{"answer": "C", "why": "x"}', None),
    ('{"answer": ["C"]}', None), ("C", None), ("not json", None), ('["C"]', None),
])
def test_a_response_format_reply_must_be_exactly_the_json_asked_for(reply: str, expected: str | None) -> None:
    assert read_letter(reply, LETTERS, "response_format") == expected


def test_the_follow_up_goes_on_in_the_same_conversation_in_the_items_language() -> None:
    prompt = load_elicitation_prompt()
    first = [{"role": "system", "content": "s"}, {"role": "user", "content": "题目"}]
    messages = prompt.follow_up(first, "我的分析……", ("A", "B", "C"), "zh")
    assert messages[:2] == first and messages[2] == {"role": "assistant", "content": "我的分析……"}
    assert messages[3]["role"] == "user" and "A、B和C" in messages[3]["content"]
    assert prompt.name == "anesbench-elicit-1" and len(prompt.sha256) == 64


@pytest.mark.parametrize(("flavour", "field", "value", "expected"), [
    ("sglang", "regex", "(C|D)", "C"),
    ("sglang", "regex", "[D]", "D"),  # the model leans to C, the regex allows only D: D it is
    ("sglang", "ebnf", 'root ::= "A" | "C"', "C"),
    ("llamacpp", "grammar", 'root ::= "B"', "B"),
    ("vllm", "guided_choice", ["A", "C"], "C"),
])
def test_the_standin_applies_the_constraints_of_its_engine_exactly(
    flavour: str, field: str, value: Any, expected: str
) -> None:
    import random

    content, finish = follow_up_reply({field: value}, flavour, "C", "chatty", random.Random(0))
    assert (content, finish) == (expected, "stop")


def test_the_standin_ignores_constraints_its_engine_does_not_know() -> None:
    import random

    content, _ = follow_up_reply({"grammar": 'root ::= "C"'}, "vllm", "C", "chatty", random.Random(0))
    assert read_letter(content, LETTERS, "grammar") is None and "C" in content


def test_the_standin_refuses_a_grammar_it_cannot_apply() -> None:
    import random

    with pytest.raises(Unsatisfiable):
        follow_up_reply({"grammar": "root ::= [A-D]"}, "llamacpp", "C", "terse", random.Random(0))
    with pytest.raises(Unsatisfiable):
        follow_up_reply({"regex": "(E|F"}, "sglang", "C", "terse", random.Random(0))
