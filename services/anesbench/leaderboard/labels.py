"""How a run is named on a board: the model, plus its configuration when that is not the paper's."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from anesbench.defaults import DEFAULT_SCORING, PAPER_MAX_TOKENS, PAPER_SAMPLES, PAPER_TEMPERATURE, default_elicit
from anesbench.prompts import load_template
from anesbench.store.leaderboard_sql import LeaderboardRow


@cache
def _default_template(scoring: str) -> tuple[str, str]:
    template = load_template(None, scoring=scoring)
    return template.name, template.sha256


def configuration_note(row: LeaderboardRow) -> str:
    """``""`` for the paper's configuration, else e.g. ``"max_tokens=512, T=0.7, prompt=mine@1a2b3c4d"``."""
    parts = [f"scoring={row.scoring}"] if row.scoring != DEFAULT_SCORING else []
    if row.max_tokens and row.max_tokens != PAPER_MAX_TOKENS:
        parts.append(f"max_tokens={row.max_tokens}")
    if row.temperature != PAPER_TEMPERATURE:
        parts.append(f"T={row.temperature:g}")
    if row.samples != PAPER_SAMPLES:
        parts.append(f"samples={row.samples}")
    if row.prompt_sha256 and row.prompt_sha256 != _default_template(row.scoring)[1]:
        parts.append(f"prompt={row.prompt_template}@{row.prompt_sha256[:8]}")
    if row.item_limit is not None:
        parts.append(f"first {row.item_limit} items only")
    if row.elicit != default_elicit(row.scoring):
        parts.append(f"elicit={row.elicit}")
    return ", ".join(parts)


CALIBRATION = {"brier": "Brier", "ece": "ECE"}  # row field -> column title


def calibration_shown(rows: Sequence[LeaderboardRow]) -> list[str]:
    """The calibration fields some row has: a board of generative runs alone shows none."""
    return [name for name in CALIBRATION if any(getattr(row, name) is not None for row in rows)]


def is_incomplete(row: LeaderboardRow) -> bool:
    """Not a headline number: the run did not complete, or some items never got a usable response."""
    return row.status != "completed" or row.errors > 0


def model_label(row: LeaderboardRow) -> str:
    note = configuration_note(row)
    label = f"{row.model} [{note}]" if note else row.model
    return f"* {label}" if is_incomplete(row) else label


INCOMPLETE_NOTE = "* run not completed or with errors (shown by --include-incomplete or --run): not a headline number"
