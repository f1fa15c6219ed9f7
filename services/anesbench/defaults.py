"""The evaluation defaults, defined once: the AnesBench paper's methodology and our request policy.

A run whose generation settings differ from the defaults (the paper's) is a different experiment, and the
leaderboard says so next to the model name.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_TOKENS = 2048  # new tokens per reply
DEFAULT_TEMPERATURE = 0.0
DEFAULT_SAMPLES = 1
DEFAULT_LANGUAGES: tuple[str, ...] = ("en",)
DEFAULT_REQUEST_TIMEOUT_S = 600.0  # per attempt; long chain-of-thought replies on a busy server take minutes
DEFAULT_MAX_ATTEMPTS = 6
# Where the rules find no answer, ask the model once more for its final letter (anesbench.engine.runner.Elicitation).
ELICIT_MODES = ("off", "unanswered", "all")
DEFAULT_ELICIT = "unanswered"
# generate: a chat reply graded by the rules; logprobs: the next-token probabilities of the option letters.
SCORINGS = ("generate", "logprobs")
DEFAULT_SCORING = "generate"


def default_elicit(scoring: str) -> str:
    """Elicitation asks a chat model again; a logprob run has no reply to ask about."""
    return "off" if scoring == "logprobs" else DEFAULT_ELICIT


@dataclass(frozen=True, slots=True)
class Bounds:
    """The accepted values of one run setting; the CLI's option types and ``RunConfig`` both read these."""

    low: float
    high: float
    low_open: bool = False  # ``low`` itself is refused (a timeout of 0 s)
    unit: str = ""

    def __contains__(self, value: float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def describe(self) -> str:
        """How an error message says the range.

        >>> Bounds(0, 86_400, unit=" seconds").describe()
        'from 0 to 86400 seconds'
        """
        return f"from {self.low} to {self.high}{self.unit}"


#: setting -> accepted values (``None`` is also accepted for concurrency and limit: automatic, all); whole numbers,
#: so that ``describe`` writes them as such
RUN_BOUNDS: dict[str, Bounds] = {
    "concurrency": Bounds(1, 4096),
    "max_tokens": Bounds(1, 1_000_000),
    "temperature": Bounds(0, 2),
    "request_timeout": Bounds(0, 86_400, low_open=True, unit=" seconds"),
    "samples": Bounds(1, 100),
    "max_attempts": Bounds(1, 100),
    "limit": Bounds(1, 10_000_000),
    "wait_ready": Bounds(0, 86_400, unit=" seconds"),
}
