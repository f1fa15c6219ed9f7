"""Fault and latency plan of the stand-in server (a test and benchmark tool, not a model)."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from anesbench_testkit.standin.constrained import FLAVOURS, UNCONSTRAINED_REPLIES
from anesbench_testkit.standin.logprobs import LOGPROB_SHAPES

FAULT_KINDS = ("503", "500", "429", "400", "401", "reset", "hang", "garbage")
LATENCY_DISTS = ("uniform", "lognormal")


@dataclass(slots=True)
class FaultPlan:
    """What the stand-in does besides answering.

    ``fail_first`` makes every distinct request fail its first N attempts with ``fail_kind``
    (deterministic, for retry tests); ``fail_every`` fails every Nth attempt in arrival order with
    ``fail_kind`` (an exact share, whatever the order); ``fault_rate`` fails a random share of all
    attempts with a kind drawn from ``fault_kinds`` (for soak and benchmark runs).
    """

    latency_ms: float = 0.0  # mean service time
    jitter_ms: float = 0.0  # uniform: service time = latency_ms ± jitter_ms
    latency_dist: str = "uniform"  # or "lognormal": heavy-tailed reply lengths (see service_time)
    sigma: float = 1.0  # lognormal: spread of a question's length (the same for every model)
    model_sigma: float = 0.3  # lognormal: spread of one model's (and sample's) factor on top of it
    latency_cap: float = 25.0  # lognormal: no reply takes longer than this many times the mean
    tokens_per_second: float = 100.0  # lognormal: completion tokens reported = service time x this
    accept_n: bool = True  # False: answer n > 1 with HTTP 400 like servers that do not support it
    report_slots: bool = True  # False: no /get_server_info (404), like vLLM or a hosted API
    slots: int = 0  # 0: unlimited; otherwise requests beyond the slots queue
    fail_first: int = 0
    fail_kind: str = "503"
    fail_every: int = 0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("503", "429", "reset")
    retry_after: float | None = None
    hang_seconds: float = 30.0
    accuracy: dict[int, float] = field(default_factory=lambda: {1: 0.8, 2: 0.65, 3: 0.5})
    unanswerable_rate: float = 0.03
    api_key: str | None = None  # when set, requests without "Authorization: Bearer <key>" get 401
    served_models: tuple[str, ...] = ("standin",)  # what GET /v1/models lists
    not_ready_seconds: float = 0.0  # a cold start: /health, /v1/models and chat answer 503 until then
    huge_reply_rate: float = 0.0  # share of replies padded to huge_reply_bytes (the same requests every time)
    huge_reply_bytes: int = 2 << 20
    constraints: str = "sglang"  # which engine's constrained decoding it plays (see standin.constrained)
    unconstrained_reply: str = "terse"  # a follow-up without an applied constraint: "B." or a chatty sentence
    change_mind_rate: float = 0.0  # share of follow-ups whose final letter differs from the reply's own
    follow_up_fault: str | None = None  # a fault kind every follow-up attempt gets (the replies are served)
    logprobs: str = "openai"  # /v1/completions: which server's logprobs shape, or how it cannot score (standin.logprobs)
    top_logprobs: int = 20  # the most alternatives it lists, whatever the request asks

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {key!r}")
            if key == "accuracy":
                value = {int(level): float(p) for level, p in value.items()}
            elif key in ("fault_kinds", "served_models"):
                value = tuple(value)
            setattr(self, key, value)
        if self.latency_dist not in LATENCY_DISTS:
            raise ValueError(f"unknown latency distribution {self.latency_dist!r}; choose from {', '.join(LATENCY_DISTS)}")
        if self.sigma < 0 or self.model_sigma < 0 or self.latency_cap <= 0:
            raise ValueError("sigma and model_sigma must be >= 0 and latency_cap > 0")
        if self.constraints not in FLAVOURS:
            raise ValueError(f"unknown constraints flavour {self.constraints!r}; choose from {', '.join(FLAVOURS)}")
        if self.logprobs not in LOGPROB_SHAPES:
            raise ValueError(f"unknown logprobs {self.logprobs!r}; choose from {', '.join(LOGPROB_SHAPES)}")
        if self.unconstrained_reply not in UNCONSTRAINED_REPLIES:
            raise ValueError(f"unknown unconstrained_reply {self.unconstrained_reply!r}; choose from "
                             f"{', '.join(UNCONSTRAINED_REPLIES)}")
        for kind in (self.fail_kind, *self.fault_kinds, *((self.follow_up_fault,) if self.follow_up_fault else ())):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def service_time(plan: FaultPlan, key: str, question: str, variant: str, seed: int = 0) -> float:
    """Seconds a request occupies a decode slot.

    ``uniform``: ``latency_ms`` ± ``jitter_ms``, drawn from the request ``key``. ``lognormal``: the
    question's own length factor (drawn from the question text and ``seed``, so every model and
    every run agrees on which questions are long) times a factor of the model and sample
    (``variant``), each lognormal with mean 1; the product has mean ``latency_ms`` and is capped at
    ``latency_cap`` times it. History from one model therefore predicts another's lengths up to a
    lognormal factor of ``model_sigma``, which is how chain-of-thought lengths behave across models.
    """
    if plan.latency_dist == "lognormal":
        mean = plan.latency_ms / 1000
        question_z = random.Random(f"{seed}:q:{question}").gauss(0.0, 1.0)
        variant_z = random.Random(f"{seed}:v:{variant}:{question}").gauss(0.0, 1.0)
        log_factor = (plan.sigma * question_z - plan.sigma ** 2 / 2) + (
            plan.model_sigma * variant_z - plan.model_sigma ** 2 / 2)
        return min(mean * math.exp(log_factor), mean * plan.latency_cap)
    if plan.latency_ms or plan.jitter_ms:
        jitter = random.Random(key).uniform(-plan.jitter_ms, plan.jitter_ms) if plan.jitter_ms else 0.0
        return max(plan.latency_ms + jitter, 0.0) / 1000
    return 0.0
