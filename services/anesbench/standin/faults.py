"""Fault and latency plan of the stand-in server (a test and benchmark tool, not a model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("503", "500", "429", "400", "401", "reset", "hang", "garbage")


@dataclass(slots=True)
class FaultPlan:
    """What the stand-in does besides answering.

    ``fail_first`` makes every distinct request fail its first N attempts with ``fail_kind``
    (deterministic, for retry tests); ``fault_rate`` fails a random share of all attempts with a
    kind drawn from ``fault_kinds`` (for soak and benchmark runs).
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    slots: int = 0  # 0: unlimited; otherwise requests beyond the slots queue
    fail_first: int = 0
    fail_kind: str = "503"
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

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {key!r}")
            if key == "accuracy":
                value = {int(level): float(p) for level, p in value.items()}
            elif key in ("fault_kinds", "served_models"):
                value = tuple(value)
            setattr(self, key, value)
        for kind in (self.fail_kind, *self.fault_kinds):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
