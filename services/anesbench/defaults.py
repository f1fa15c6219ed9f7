"""The evaluation defaults, defined once: the AnesBench paper's methodology and our request policy.

A run whose configuration differs from the paper's (``PAPER_*``) is a different experiment, and the
leaderboard says so next to the model name.
"""

from __future__ import annotations

PAPER_MAX_TOKENS = 2048  # new tokens per reply
PAPER_TEMPERATURE = 0.0
PAPER_SAMPLES = 1

DEFAULT_MAX_TOKENS = PAPER_MAX_TOKENS
DEFAULT_TEMPERATURE = PAPER_TEMPERATURE
DEFAULT_SAMPLES = PAPER_SAMPLES
DEFAULT_LANGUAGES: tuple[str, ...] = ("en",)
DEFAULT_REQUEST_TIMEOUT_S = 600.0  # per attempt; long chain-of-thought replies on a busy server take minutes
DEFAULT_MAX_ATTEMPTS = 6
