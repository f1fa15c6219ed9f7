"""Option-letter probabilities from a server's top next-token list, the run setting that asks for them, its label."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from anesbench.dataset import load_dataset
from anesbench.engine.config import RunConfig, config_hash
from anesbench.errors import InvalidInput
from anesbench.inference.client import top_logprobs
from anesbench.inference.constraints import best_letter, letter_probs
from anesbench.leaderboard import model_label
from anesbench.prompts import load_template
from anesbench.store.leaderboard_sql import LeaderboardRow
from tests.conftest import SAMPLE

LETTERS = ("A", "B", "C", "D")


def test_the_openai_and_llamacpp_shapes_read_the_same_alternatives() -> None:
    openai = {"text": " B", "logprobs": {"tokens": [" B"], "top_logprobs": [{" B": -0.2, " A": -2.0}]}}
    llamacpp = {"text": " B", "logprobs": {"content": [{"token": " B", "logprob": -0.2, "top_logprobs": [
        {"token": " B", "logprob": -0.2}, {"token": " A", "logprob": -2.0}]}]}}
    assert top_logprobs(openai) == top_logprobs(llamacpp) == [(" B", -0.2), (" A", -2.0)]


@pytest.mark.parametrize("choice", [{"text": " B"}, {"text": " B", "logprobs": None},
                                    {"text": " B", "logprobs": {"top_logprobs": []}},
                                    {"text": " B", "logprobs": {"content": [{"token": " B"}]}}])
def test_a_reply_without_alternatives_is_refused(choice: dict) -> None:
    with pytest.raises(ValueError):
        top_logprobs(choice)


def test_every_spelling_of_a_letter_counts_for_it() -> None:
    top = [(" A", math.log(0.3)), ("A", math.log(0.1)), ("(A", math.log(0.1)), ("Ｂ", math.log(0.2)),
           (" C", math.log(0.15)), (" D", math.log(0.15)), (" a", math.log(0.5))]
    probs, complete = letter_probs(top, LETTERS)
    assert complete
    assert probs == pytest.approx({"A": 0.5, "B": 0.2, "C": 0.15, "D": 0.15})
    assert best_letter(probs) == "A"


def test_a_missing_letter_takes_the_smallest_listed_probability_and_the_sum_stays_one() -> None:
    top = [(" B", math.log(0.6)), (" A", math.log(0.2)), ("\n", math.log(0.05))]
    probs, complete = letter_probs(top, LETTERS)
    assert not complete
    assert set(probs) == set(LETTERS) and sum(probs.values()) == pytest.approx(1, abs=1e-9)
    assert probs["C"] == probs["D"] == pytest.approx(0.05 / 0.9)
    assert best_letter(probs) == "B"


def test_an_uncertain_top_letter_is_no_answer() -> None:
    only_one = [(" B", math.log(0.9))]  # the bound of the missing letters is B's own probability
    probs, complete = letter_probs(only_one, LETTERS)
    assert not complete and best_letter(probs) is None
    assert best_letter(letter_probs([("\n", -0.1), (" The", -3.0)], LETTERS)[0]) is None


def test_logprob_scoring_refuses_elicitation_and_several_samples() -> None:
    with pytest.raises(InvalidInput) as refused:
        RunConfig(model="m", endpoints=("http://h/v1",), scoring="logprobs", elicit="unanswered")
    assert refused.value.field == "elicit"
    with pytest.raises(InvalidInput) as refused:
        RunConfig(model="m", endpoints=("http://h/v1",), scoring="logprobs", elicit="off", samples=3)
    assert refused.value.field == "samples"


def test_scoring_is_part_of_the_configuration_hash() -> None:
    dataset, template = load_dataset(str(SAMPLE), ("en",)), load_template()
    generate = RunConfig(model="m", endpoints=("http://h/v1",), elicit="off")
    logprobs = RunConfig(model="m", endpoints=("http://h/v1",), elicit="off", scoring="logprobs")
    assert config_hash(generate, dataset, template) != config_hash(logprobs, dataset, template)


def test_a_logprob_run_is_labelled_by_its_scoring_and_not_by_its_own_defaults() -> None:
    template = load_template(None, scoring="logprobs")
    row = LeaderboardRow("r", "m", "d", "en", "overall", 1, 2, 0.5, 0, status="completed", prompt_template=template.name,
                         prompt_sha256=template.sha256, max_tokens=2048, elicit="off", scoring="logprobs")
    assert model_label(row) == "m [scoring=logprobs]"
    assert model_label(replace(row, scoring="generate", prompt_sha256=load_template().sha256)) == "m [elicit=off]"
