"""Translate between ``anesbench.v1`` messages and the engine's types, for the client and the server alike.

The dispatcher's servicer stays a thin adapter, and the CLI builds its requests and reads the answers
with the same functions, so both ends read a field the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from anesbench.dataset import Item
from anesbench.dataset.model import LANGUAGES, LETTERS
from anesbench.defaults import DEFAULT_ELICIT, DEFAULT_SCORING, default_elicit
from anesbench.engine.config import RunConfig
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord
from anesbench.store.export import EXPORT_NAMES
from anesbench.store.leaderboard_sql import LeaderboardRow, ReliabilityBin
from anesbench.store.records import RunFigures, TrendPoint
from anesbench.v1 import dispatcher_pb2 as pb

# A run's status as the store spells it ("pending") -> the enum value (RUN_STATUS_PENDING), and back.
STATUS = {name.removeprefix("RUN_STATUS_").lower(): value for name, value in pb.RunStatus.items()
          if value != pb.RUN_STATUS_UNSPECIFIED}
STATUS_NAME = {value: key for key, value in STATUS.items()}


def _fields(message: Any) -> dict[str, Any]:
    """The fields of ``message`` by name: None where an optional one (or a message) is absent, datetimes for timestamps."""
    values = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name) if not field.has_presence or message.HasField(field.name) else None
        values[field.name] = value.ToDatetime() if isinstance(value, Timestamp) else value
    return values


def _same_fields(record: Any, message_type: Any) -> dict[str, Any]:
    """The dataclass fields of ``record`` that ``message_type`` has too, by name (None: left absent)."""
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name in message_type.DESCRIPTOR.fields_by_name}


def run_to_pb(run: RunRecord) -> pb.Run:
    return pb.Run(**_same_fields(run, pb.Run) | {"status": STATUS.get(run.status, pb.RUN_STATUS_UNSPECIFIED),
                                                 "accuracy_delta": run.delta, "accuracy_delta_pvalue": run.delta_pvalue})


def run_from_pb(message: pb.Run) -> RunRecord:
    values = _fields(message)
    delta, delta_pvalue = values.pop("accuracy_delta"), values.pop("accuracy_delta_pvalue")
    empty_is_none = ("error", "elicit_prompt", "elicit_prompt_sha256", "elicit_constraint")
    return RunRecord(**values | {name: values[name] or None for name in empty_is_none} | {
        "languages": list(message.languages), "samples": message.samples or 1, "config_hash": "",
        "status": STATUS_NAME.get(message.status, "pending"), "elicit": message.elicit or "off",
        "scoring": message.scoring or DEFAULT_SCORING, "delta": delta, "delta_pvalue": delta_pvalue,
    })


def leaderboard_to_pb(rows: Sequence[LeaderboardRow]) -> pb.GetLeaderboardResponse:
    return pb.GetLeaderboardResponse(rows=[asdict(row) for row in rows])  # None: an optional field left absent


def leaderboard_from_pb(response: pb.GetLeaderboardResponse) -> list[LeaderboardRow]:
    return [
        LeaderboardRow(**_fields(r) | {
            "samples": r.samples or 1, "elicit": r.elicit or DEFAULT_ELICIT, "scoring": r.scoring or DEFAULT_SCORING,
            "reliability": tuple(ReliabilityBin(**_fields(b)) for b in r.reliability),
        })
        for r in response.rows
    ]


def export_row_to_pb(row: Sequence[Any]) -> pb.ExportedResult:
    """A row of :data:`anesbench.store.export.EXPORT_COLUMNS` as a message (None = field absent)."""
    return pb.ExportedResult(**dict(zip(EXPORT_NAMES, row, strict=True)))


def export_row_from_pb(message: pb.ExportedResult) -> dict[str, Any]:
    """The message back as a row dict in export column order (absent optional fields = None)."""
    values = _fields(message)
    return {name: values[name] for name in EXPORT_NAMES}


def report_figures_to_pb(figures: Sequence[RunFigures], trend: Sequence[TrendPoint]) -> pb.GetReportFiguresResponse:
    def quantiles(values: tuple[float, float, float] | None) -> pb.Quantiles | None:
        return None if values is None else pb.Quantiles(median=values[0], p90=values[1], max=values[2])

    runs = [pb.RunFigures(run_id=f.run_id, by_outcome=f.by_outcome, methods=f.methods,
                          completion_tokens=quantiles(f.tokens), latency_s=quantiles(f.latencies),
                          wrong=[export_row_to_pb(list(row.values())) for row in f.wrong]) for f in figures]
    return pb.GetReportFiguresResponse(runs=runs, trend=[asdict(point) for point in trend])


def report_figures_from_pb(response: pb.GetReportFiguresResponse) -> tuple[list[RunFigures], list[TrendPoint]]:
    def quantiles(message: pb.RunFigures, name: str) -> tuple[float, float, float] | None:
        found = getattr(message, name)
        return (found.median, found.p90, found.max) if message.HasField(name) else None

    figures = [RunFigures(f.run_id, {k: f.by_outcome.get(k, 0) for k in ("correct", "wrong", "unanswered", "error")},
                          dict(f.methods), quantiles(f, "completion_tokens"), quantiles(f, "latency_s"),
                          [export_row_from_pb(row) for row in f.wrong]) for f in response.runs]
    return figures, [TrendPoint(**_fields(point)) for point in response.trend]


def spec_to_pb(config: RunConfig, prompt_template: str | None) -> pb.RunSpec:
    return pb.RunSpec(**_same_fields(config, pb.RunSpec), endpoint=config.endpoints[0] if config.endpoints else "",
                      more_endpoints=config.endpoints[1:], request_timeout_seconds=config.request_timeout,
                      wait_ready_seconds=config.wait_ready, prompt_template=prompt_template)


# RunConfig fields as the StartRunRequest spells them (the others are spec.<field>).
_REQUEST_FIELD = {"run_id": "run_id", "endpoints": "spec.endpoint", "request_timeout": "spec.request_timeout_seconds",
                  "wait_ready": "spec.wait_ready_seconds"}
_CONFIG_FIELDS = frozenset(f.name for f in fields(RunConfig))


def request_field(field: str) -> str:
    """An error's field (or a setting it mentions) as named in the request: ``concurrency`` -> ``spec.concurrency``."""
    return _REQUEST_FIELD.get(field, f"spec.{field}" if field in _CONFIG_FIELDS else field)


def config_from_pb(spec: pb.RunSpec, run_id: str) -> RunConfig:
    """Build a validated RunConfig; zero values mean 'default' (proto3 has no presence for scalars)."""
    given = _fields(spec) | {"languages": tuple(spec.languages), "request_timeout": spec.request_timeout_seconds,
                             "wait_ready": spec.wait_ready_seconds, "run_id": run_id}
    return RunConfig(**{name: given[name] for name in _CONFIG_FIELDS & given.keys() if given[name]} | {
        "model": spec.model, "elicit": spec.elicit or default_elicit(spec.scoring),
        "endpoints": (spec.endpoint, *spec.more_endpoints) if spec.endpoint else tuple(spec.more_endpoints)})


def item_to_pb(item: Item) -> pb.Item:
    return pb.Item(**asdict(item))  # the same fields, the texts' too


def item_record(item: pb.Item, index: int) -> dict[str, Any]:
    """An uploaded item as an AnesBench record, for the same validation as a file."""
    record: dict[str, Any] = {"id": item.id, "choice_num": item.choice_num, "answer": item.answer,
                              "level": item.level}
    for language, text in item.texts.items():
        if language not in LANGUAGES:
            raise InvalidInput(f"upload item #{index} (id {item.id[:64]}): field 'texts': unknown language "
                               f"{language[:16]!r}")
        record[f"{language}_question"] = text.question
        for letter, option in text.options.items():
            if len(letter) != 1 or letter not in LETTERS:
                raise InvalidInput(f"upload item #{index} (id {item.id[:64]}): field 'texts.{language}.options': "
                                   f"unknown option letter {letter[:8]!r}")
            record[f"{language}_{letter}"] = option
    return record
