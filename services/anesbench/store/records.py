"""Rows as the store reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anesbench.defaults import DEFAULT_ELICIT, DEFAULT_SCORING


@dataclass(slots=True)
class RunRecord:
    id: str
    model: str
    endpoint: str
    dataset_name: str
    dataset_sha256: str
    prompt_template: str
    prompt_sha256: str
    max_tokens: int
    temperature: float
    samples: int
    languages: list[str]
    harness_version: str
    config_hash: str
    status: str = "pending"
    total: int = 0
    done: int = 0
    failed: int = 0
    correct: int = 0
    unanswered: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    extractor_version: str = ""  # anesbench.grading.EXTRACTOR_VERSION of the grader that graded the run
    ordering: str | None = None  # 'history:<run ids>' (longest expected first) or 'file'
    item_limit: int | None = None  # the first N items only (--limit); None: the whole dataset
    elicit: str = DEFAULT_ELICIT  # off | unanswered | all (the store reads "off" for runs from before it)
    elicit_prompt: str | None = None
    elicit_prompt_sha256: str | None = None
    elicit_constraint: str | None = None  # the constraint the server was found to support (last start)
    delta: float | None = None  # overall accuracy minus that of the run it was paired with (None: not paired)
    delta_pvalue: float | None = None  # exact McNemar p of that pairing
    scoring: str = DEFAULT_SCORING  # generate | logprobs (the store reads "generate" for runs from before it)


@dataclass(slots=True)
class ResultRow:
    run_id: str
    item_id: str
    language: str
    sample: int
    level: int
    answer: str
    request_hash: str
    response: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    attempts: int = 0
    pred: str | None = None
    method: str | None = None
    correct: bool | None = None
    error: str | None = None
    reused_from: str | None = None
    created_at: datetime = field(default_factory=datetime.now)
    # The rules' own verdict, kept when the follow-up decided ``pred`` (``method`` = "elicited").
    pred_rules: str | None = None
    method_rules: str | None = None
    # The follow-up turn (``--elicit``): None = not asked, "pending" (reply stored, follow-up not yet), "done", "failed".
    elicitation: str | None = None
    elicitation_params: str | None = None  # JSON: prompt, constraint, max_tokens, temperature
    elicitation_response: str | None = None
    elicitation_error: str | None = None
    elicitation_attempts: int | None = None
    elicitation_latency_s: float | None = None
    elicitation_prompt_tokens: int | None = None
    elicitation_completion_tokens: int | None = None
    # Logprob scoring: JSON letter -> probability over exactly the item's letters (see anesbench.inference.constraints).
    letter_probs: str | None = None
    letter_probs_complete: bool | None = None  # False: a letter was missing from the server's top list


@dataclass(frozen=True, slots=True)
class RunDelta:
    """A completed run against the newest earlier clean run of its series, on their common items."""

    run_id: str
    base_run_id: str
    language: str  # en | zh | all (every language of both runs, when there are several)
    n_pairs: int
    delta: float  # accuracy of run_id minus that of base_run_id
    ci_low: float  # 95 % paired bootstrap interval of delta
    ci_high: float
    pvalue: float  # exact McNemar


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    run_ids: list[str]  # the runs pruned, in id order
    kept_aggregates: bool
    bytes_before: int  # the file with its write-ahead log, before and after
    bytes_after: int


@dataclass(frozen=True, slots=True)
class RunFigures:
    run_id: str
    by_outcome: dict[str, int]
    methods: dict[str, int]
    tokens: tuple[float, float, float] | None  # median, p90, max; None: nothing recorded
    latencies: tuple[float, float, float] | None
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the first wrong or unanswered, as export rows


@dataclass(frozen=True, slots=True)
class TrendPoint:
    model: str
    series: str  # the series key (opaque)
    label: str  # what the series is, for a legend
    run_id: str
    created_at: datetime
    correct: int
    total: int
