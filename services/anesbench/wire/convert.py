"""Translate between ``anesbench.v1`` messages and the engine's types, for the client and the server alike.

The dispatcher's servicer stays a thin adapter, and the CLI builds its requests and reads the answers
with the same functions, so both ends read a field the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from anesbench.dataset import Item
from anesbench.dataset.model import LANGUAGES, LETTERS
from anesbench.defaults import (
    DEFAULT_ELICIT,
    DEFAULT_LANGUAGES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SAMPLES,
    DEFAULT_SCORING,
    default_elicit,
)
from anesbench.engine.config import RunConfig
from anesbench.errors import InvalidInput
from anesbench.store import RunRecord
from anesbench.store.export_sql import EXPORT_NAMES
from anesbench.store.leaderboard_sql import LeaderboardRow, ReliabilityBin
from anesbench.store.report_reads import RunFigures, TrendPoint
from anesbench.v1 import dispatcher_pb2 as pb

STATUS = {
    "pending": pb.RUN_STATUS_PENDING,
    "running": pb.RUN_STATUS_RUNNING,
    "completed": pb.RUN_STATUS_COMPLETED,
    "failed": pb.RUN_STATUS_FAILED,
    "cancelled": pb.RUN_STATUS_CANCELLED,
}
STATUS_NAME = {value: key for key, value in STATUS.items()}


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _datetime(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime() if present else None


def run_to_pb(run: RunRecord) -> pb.Run:
    return pb.Run(
        id=run.id, model=run.model, endpoint=run.endpoint, dataset_name=run.dataset_name,
        dataset_sha256=run.dataset_sha256, languages=list(run.languages),
        status=STATUS.get(run.status, pb.RUN_STATUS_UNSPECIFIED),
        total=run.total, done=run.done, failed=run.failed, correct=run.correct, unanswered=run.unanswered,
        started_at=_timestamp(run.started_at), finished_at=_timestamp(run.finished_at), error=run.error or "",
        prompt_template=run.prompt_template, prompt_sha256=run.prompt_sha256, max_tokens=run.max_tokens,
        temperature=run.temperature, samples=run.samples, harness_version=run.harness_version,
        extractor_version=run.extractor_version, elicit=run.elicit, elicit_prompt=run.elicit_prompt or "",
        elicit_prompt_sha256=run.elicit_prompt_sha256 or "", elicit_constraint=run.elicit_constraint or "",
        accuracy_delta=run.delta, accuracy_delta_pvalue=run.delta_pvalue,
        scoring=run.scoring,
    )


def run_from_pb(run: pb.Run) -> RunRecord:
    return RunRecord(
        id=run.id, model=run.model, endpoint=run.endpoint, dataset_name=run.dataset_name,
        dataset_sha256=run.dataset_sha256, prompt_template=run.prompt_template, prompt_sha256=run.prompt_sha256,
        max_tokens=run.max_tokens, temperature=run.temperature, samples=run.samples or 1,
        languages=list(run.languages), harness_version=run.harness_version, extractor_version=run.extractor_version,
        config_hash="", status=STATUS_NAME.get(run.status, "pending"), total=run.total, done=run.done,
        failed=run.failed, correct=run.correct, unanswered=run.unanswered,
        started_at=_datetime(run.started_at, run.HasField("started_at")),
        finished_at=_datetime(run.finished_at, run.HasField("finished_at")), error=run.error or None,
        elicit=run.elicit or "off", elicit_prompt=run.elicit_prompt or None,
        elicit_prompt_sha256=run.elicit_prompt_sha256 or None, elicit_constraint=run.elicit_constraint or None,
        delta=run.accuracy_delta if run.HasField("accuracy_delta") else None,
        delta_pvalue=run.accuracy_delta_pvalue if run.HasField("accuracy_delta_pvalue") else None,
        scoring=run.scoring or DEFAULT_SCORING,
    )


_OPTIONAL_FIELDS = ("mean_accuracy", "majority_accuracy", "agreement", "item_limit", "brier", "ece")


def leaderboard_to_pb(rows: Sequence[LeaderboardRow]) -> pb.GetLeaderboardResponse:
    out = []
    for r in rows:
        message = pb.LeaderboardRow(
            run_id=r.run_id, model=r.model, dataset=r.dataset, language=r.language, level=r.level,
            correct=r.correct, total=r.total, accuracy=r.accuracy, unanswered=r.unanswered, errors=r.errors,
            status=r.status, ci_low=r.ci_low, ci_high=r.ci_high, prompt_template=r.prompt_template,
            prompt_sha256=r.prompt_sha256, max_tokens=r.max_tokens, temperature=r.temperature, samples=r.samples,
            elicit=r.elicit, elicited=r.elicited, accuracy_strict=r.accuracy_strict, scoring=r.scoring,
            reliability=[pb.ReliabilityBin(bin=b.bin, n=b.n, correct=b.correct, confidence=b.confidence)
                         for b in r.reliability],
        )
        for name in _OPTIONAL_FIELDS:
            if getattr(r, name) is not None:
                setattr(message, name, getattr(r, name))
        out.append(message)
    return pb.GetLeaderboardResponse(rows=out)


def leaderboard_from_pb(response: pb.GetLeaderboardResponse) -> list[LeaderboardRow]:
    return [
        LeaderboardRow(
            r.run_id, r.model, r.dataset, r.language, r.level, r.correct, r.total, r.accuracy, r.unanswered,
            r.errors, r.status, r.ci_low, r.ci_high, r.prompt_template, r.prompt_sha256, r.max_tokens,
            r.temperature, r.samples or 1,
            **{name: getattr(r, name) if r.HasField(name) else None for name in _OPTIONAL_FIELDS},
            elicit=r.elicit or DEFAULT_ELICIT, elicited=r.elicited, accuracy_strict=r.accuracy_strict,
            reliability=tuple(ReliabilityBin(b.bin, b.n, b.correct, b.confidence) for b in r.reliability),
            scoring=r.scoring or DEFAULT_SCORING,
        )
        for r in response.rows
    ]


def export_row_to_pb(row: Sequence[Any]) -> pb.ExportedResult:
    """A row of :data:`anesbench.store.export_sql.EXPORT_COLUMNS` as a message (None = field absent)."""
    return pb.ExportedResult(**{name: value for name, value in zip(EXPORT_NAMES, row, strict=True)
                                if value is not None})


def export_row_from_pb(message: pb.ExportedResult) -> dict[str, Any]:
    """The message back as a row dict in export column order (absent optional fields = None)."""
    return {name: getattr(message, name) if name in _ALWAYS or message.HasField(name) else None
            for name in EXPORT_NAMES}


_ALWAYS = {"item_id", "language", "level", "sample", "gold", "outcome", "attempts"}


def report_figures_to_pb(figures: Sequence[RunFigures], trend: Sequence[TrendPoint]) -> pb.GetReportFiguresResponse:
    def quantiles(values: tuple[float, float, float] | None) -> pb.Quantiles | None:
        return None if values is None else pb.Quantiles(median=values[0], p90=values[1], max=values[2])

    runs = [pb.RunFigures(run_id=f.run_id, by_outcome=f.by_outcome, methods=f.methods,
                          completion_tokens=quantiles(f.tokens), latency_s=quantiles(f.latencies),
                          wrong=[export_row_to_pb(list(row.values())) for row in f.wrong]) for f in figures]
    points = [pb.TrendPoint(model=p.model, series=p.series, label=p.label, run_id=p.run_id,
                            created_at=_timestamp(p.created_at), correct=p.correct, total=p.total) for p in trend]
    return pb.GetReportFiguresResponse(runs=runs, trend=points)


def report_figures_from_pb(response: pb.GetReportFiguresResponse) -> tuple[list[RunFigures], list[TrendPoint]]:
    def quantiles(message: pb.RunFigures, name: str) -> tuple[float, float, float] | None:
        found = getattr(message, name)
        return (found.median, found.p90, found.max) if message.HasField(name) else None

    figures = [RunFigures(f.run_id, {k: f.by_outcome.get(k, 0) for k in ("correct", "wrong", "unanswered", "error")},
                          dict(f.methods), quantiles(f, "completion_tokens"), quantiles(f, "latency_s"),
                          [export_row_from_pb(row) for row in f.wrong]) for f in response.runs]
    trend = [TrendPoint(p.model, p.series, p.label, p.run_id, p.created_at.ToDatetime(), p.correct, p.total)
             for p in response.trend]
    return figures, trend


def spec_to_pb(config: RunConfig, prompt_template: str | None) -> pb.RunSpec:
    return pb.RunSpec(
        model=config.model, endpoint=config.endpoints[0] if config.endpoints else "",
        more_endpoints=list(config.endpoints[1:]), inference_service=config.inference_service or "",
        namespace=config.namespace or "",
        max_attempts=config.max_attempts, languages=list(config.languages),
        concurrency=config.concurrency or 0, max_tokens=config.max_tokens, temperature=config.temperature,
        request_timeout_seconds=config.request_timeout, prompt_template=prompt_template or "",
        samples=config.samples, reuse=config.reuse, wait_ready_seconds=config.wait_ready, limit=config.limit or 0,
        elicit=config.elicit, scoring=config.scoring,
    )


# RunConfig fields as the StartRunRequest spells them (the others are spec.<field>).
_REQUEST_FIELD = {"run_id": "run_id", "endpoints": "spec.endpoint", "request_timeout": "spec.request_timeout_seconds",
                  "wait_ready": "spec.wait_ready_seconds"}
_CONFIG_FIELDS = frozenset(f.name for f in fields(RunConfig))


def request_field(field: str) -> str:
    """An error's field (or a setting it mentions) as named in the request: ``concurrency`` -> ``spec.concurrency``."""
    if field in _REQUEST_FIELD:
        return _REQUEST_FIELD[field]
    return f"spec.{field}" if field in _CONFIG_FIELDS else field


def config_from_pb(spec: pb.RunSpec, run_id: str) -> RunConfig:
    """Build a validated RunConfig; zero values mean 'default' (proto3 has no presence for scalars)."""
    return RunConfig(
        model=spec.model, endpoints=(spec.endpoint, *spec.more_endpoints) if spec.endpoint else tuple(spec.more_endpoints),
        inference_service=spec.inference_service or None, namespace=spec.namespace or None,
        max_attempts=spec.max_attempts or DEFAULT_MAX_ATTEMPTS,
        languages=tuple(spec.languages) or DEFAULT_LANGUAGES,
        concurrency=spec.concurrency or None, max_tokens=spec.max_tokens or DEFAULT_MAX_TOKENS, temperature=spec.temperature,
        request_timeout=spec.request_timeout_seconds or DEFAULT_REQUEST_TIMEOUT_S, samples=spec.samples or DEFAULT_SAMPLES,
        reuse=spec.reuse,
        run_id=run_id or None, wait_ready=spec.wait_ready_seconds, limit=spec.limit or None,
        elicit=spec.elicit or default_elicit(spec.scoring), scoring=spec.scoring or DEFAULT_SCORING,
    )


def item_to_pb(item: Item) -> pb.Item:
    return pb.Item(
        id=item.id, choice_num=item.choice_num, answer=item.answer, level=item.level,
        texts={lang: pb.LocalizedQuestion(question=t.question, options=t.options) for lang, t in item.texts.items()},
    )


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
