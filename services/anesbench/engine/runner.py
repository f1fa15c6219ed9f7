"""The run loop: keep ``concurrency`` requests in flight, grade each answer, write each result.

Everything a run needs is passed in; the embedded CLI and the dispatcher service both call
:func:`execute_run`. A run resumes from the store: finished keys are never sent again, error rows
are sent again and replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from anesbench import metrics
from anesbench.dataset import LANGUAGES, Dataset, Item
from anesbench.engine.config import RunConfig, limited, new_run_id, run_record
from anesbench.engine.elicitation import Elicitation
from anesbench.engine.ordering import Ordering
from anesbench.engine.progress import RunProgress
from anesbench.engine.regression import with_delta
from anesbench.engine.writer import ResultWriter
from anesbench.errors import (
    AnesbenchError,
    ChoicesRefused,
    EndpointsUnreachable,
    FatalInferenceError,
    GraderUnavailable,
    InferenceError,
    InvalidInput,
    StoreWriteFailed,
    Ungradable,
)
from anesbench.grader import Grader
from anesbench.inference import GenerationParams
from anesbench.inference.client import CHAT, COMPLETIONS, Completion, completion_body, request_body
from anesbench.inference.constraints import detect_constraint
from anesbench.inference.logprobs import best_letter, letter_probs
from anesbench.inference.retry import RetryPolicy
from anesbench.inference.router import EndpointRouter
from anesbench.inference.sizing import AdaptiveLimiter, headroom, server_slots
from anesbench.inference.transport import HttpOptions
from anesbench.limiter import DynamicLimiter
from anesbench.prompts import PromptTemplate, load_elicitation_prompt
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import ResultRow, RunRecord

log = logging.getLogger(__name__)
PUBLISH_INTERVAL = 0.5
LOGPROB = "logprob"  # the method of a logprob-scored result (pred null: the top letter was not certain)
UNGRADABLE = "none_ungradable"  # the method of a reply the grader could not handle (pred null)
IN_FLIGHT_GRACE = 5.0  # seconds requests in flight may still finish after the run halted (then they are dropped)


class RunObserver(Protocol):
    """Hooks for progress display or event streams. Must not block."""

    def on_start(self, run: RunRecord, progress: RunProgress) -> None: ...

    def on_result(self, row: ResultRow, progress: RunProgress) -> None: ...

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None: ...


@dataclass(frozen=True, slots=True)
class Work:
    """One question in one language, and the samples of it still to do (a run's unit of sending); or, on
    resuming, its stored results whose follow-up turn is still to do (``resumed``)."""

    item: Item
    language: str
    samples: tuple[int, ...]
    resumed: tuple[ResultRow, ...] = ()


def sample_seed(config: RunConfig, sample: int) -> int | None:
    """Several samples per question differ by seed; a single sample sends none."""
    return sample if config.samples > 1 else None


def request_payload(config: RunConfig, messages: list[dict[str, str]], params: GenerationParams,
                    sample: int) -> tuple[bytes, str]:
    """The request body and its sha256: the identity of a request (model, prompt, parameters, sample)."""
    if config.scoring == "logprobs":
        payload = completion_body(config.model, messages)
    else:
        payload = request_body(config.model, messages, params, sample_seed(config, sample))
    return payload, hashlib.sha256(payload).hexdigest()


async def grade_reply(grader: Grader, item: Item, row: ResultRow) -> None:
    """The rules' verdict on a stored reply, as the row's ``pred`` and ``pred_rules``; a reply that alone
    cannot be graded (too large, over the grading deadline) gets no letter. GraderUnavailable propagates."""
    try:
        extraction = await grader.grade(item.texts[row.language].options, row.response or "", row.finish_reason)
    except (InvalidInput, Ungradable) as exc:
        log.info("run %s: item %s (%s) cannot be graded: %s", row.run_id, item.id, row.language, exc)
        row.pred, row.method, row.correct = None, UNGRADABLE, False
    else:
        row.pred, row.method = extraction.pred, extraction.method
        row.correct = extraction.pred == item.answer
    row.pred_rules, row.method_rules = row.pred, row.method


class _FollowUps:
    """The run's follow-up policy, built when the first follow-up is due: what the server supports is
    asked once, and a run whose rules read every reply asks nothing."""

    def __init__(self, config: RunConfig, run_id: str, store: AsyncStore, api_key: str | None,
                 http: HttpOptions | None) -> None:
        self._config, self._run_id, self._store, self._api_key, self._http = config, run_id, store, api_key, http
        self._policy: asyncio.Task[Elicitation] | None = None

    def wanted(self, row: ResultRow) -> bool:
        return row.error is None and (self._config.elicit == "all" or row.pred is None)

    def policy(self) -> asyncio.Task[Elicitation]:
        if self._policy is None:
            self._policy = asyncio.ensure_future(self._detect())
        return self._policy

    async def _detect(self) -> Elicitation:
        config = self._config
        constraint = await detect_constraint(config.endpoints[0], config.model, self._api_key, self._http)
        log.info("run %s: follow-up turns constrained by %s", self._run_id, constraint)
        await self._store.call(Store.set_elicit_constraint, self._run_id, constraint)
        return Elicitation(constraint, load_elicitation_prompt(), config.model)


class _Run:
    def __init__(
        self,
        config: RunConfig,
        run: RunRecord,
        template: PromptTemplate,
        client: EndpointRouter,
        grader: Grader,
        writer: ResultWriter,
        progress: RunProgress,
        observer: RunObserver | None,
        reusable: dict[str, ResultRow],
        limiter: DynamicLimiter | None,
        follow_ups: _FollowUps | None = None,
    ) -> None:
        self.config = config
        self.run = run
        self.template = template
        self.client = client
        self.grader = grader
        self.writer = writer
        self.progress = progress
        self.observer = observer
        self.reusable = reusable
        self.limiter = limiter
        self.follow_ups = follow_ups
        self.params = GenerationParams(max_tokens=config.max_tokens, temperature=config.temperature)
        self.pending = 0
        self.one_by_one = False  # the server refused n > 1 once: send samples one by one from then on
        self.halted: str | None = None  # why the run stops: no new request is sent once set
        self.stopping = asyncio.Event()

    def halt(self, cause: str) -> None:
        if self.halted is None:
            self.halted = cause
            self.stopping.set()
            log.info("run %s stops: %s", self.run.id, cause)  # the CLI prints the run's error once, at the end

    async def worker(self, work: Iterator[Work]) -> None:
        """Take work until there is none or the run halts; no exception leaves a worker but cancellation."""
        try:
            for unit in work:
                if self.halted is not None:
                    return
                self.pending -= len(unit.samples) + len(unit.resumed)
                rows = await (self.finish_elicitations(unit) if unit.resumed else self.process(unit))
                if rows is None:
                    continue
                for row in rows:
                    self.writer.add(row)
                    if unit.resumed:  # counted already (the store's answers seeded the progress)
                        continue
                    self.progress.record(row)
                    if self.observer is not None:
                        self.observer.on_result(row, self.progress)
        except AnesbenchError as exc:  # a refusing server (401/403/404); the dataset file changed mid-run
            self.halt(str(exc))
        except Exception as exc:  # a bug: stop the run with what it was, keep the traceback in the log
            log.info("run %s: a worker failed", self.run.id, exc_info=True)  # in the service log, not on the CLI
            self.halt(f"internal error: {type(exc).__name__}: {exc}")

    async def process(self, unit: Work) -> list[ResultRow] | None:
        """Answer (reuse or send), grade and return every pending sample of one question in one language;
        None when the run halted before they could be finished."""
        item, language = unit.item, unit.language
        messages = self.template.render(item, language)
        rows: list[ResultRow] = []
        to_send: list[tuple[ResultRow, bytes]] = []
        for sample in unit.samples:
            payload, digest = request_payload(self.config, messages, self.params, sample)
            row = ResultRow(
                run_id=self.run.id, item_id=item.id, language=language, sample=sample, level=item.level,
                answer=item.answer, request_hash=digest,
            )
            rows.append(row)
            previous = self.reusable.get(digest)
            if previous is None:
                to_send.append((row, payload))
                continue
            row.response, row.reasoning, row.finish_reason = previous.response, previous.reasoning, previous.finish_reason
            row.prompt_tokens, row.completion_tokens = previous.prompt_tokens, previous.completion_tokens
            row.letter_probs, row.letter_probs_complete = previous.letter_probs, previous.letter_probs_complete
            row.reused_from = previous.run_id
            metrics.INFERENCE_REUSED.labels(self.config.model).inc()
        letters = tuple(item.texts[language].options)
        try:
            if len(to_send) > 1 and not self.one_by_one:
                try:
                    await self._send_choices(messages, [row for row, _ in to_send])
                except ChoicesRefused as refused:
                    self.one_by_one = True
                    log.warning("the server refuses n > 1 (%s); sending samples one request each", refused)
                    await asyncio.gather(*(self._send(row, payload, letters) for row, payload in to_send))
            elif len(to_send) == 1:
                await self._send(*to_send[0], letters)  # the common case: no task per request
            elif to_send:
                await asyncio.gather(*(self._send(row, payload, letters) for row, payload in to_send))
        except EndpointsUnreachable as exc:  # the breaker opened: the unit stays to do, for the resume
            self.halt(str(exc))
            return None
        for row in rows:
            if row.error is None and row.letter_probs is not None:  # logprob scoring: the probabilities decide
                row.pred, row.method = best_letter(json.loads(row.letter_probs)), LOGPROB
                row.correct = row.pred == item.answer
            elif row.error is None:
                try:
                    await grade_reply(self.grader, item, row)
                except GraderUnavailable as exc:  # retried with backoff by the grader client until its grace ran out
                    self.halt(f"grader unavailable (the model's answers are not at fault): {exc}")
                    return None
            row.created_at = datetime.now()
        if self.follow_ups is not None and not await self._elicit(item, [r for r in rows if self.follow_ups.wanted(r)]):
            return None
        return rows

    async def finish_elicitations(self, unit: Work) -> list[ResultRow] | None:
        """A resumed run's stored results whose follow-up was not sent (or failed): send only that."""
        rows = [replace(row, created_at=datetime.now()) for row in unit.resumed]
        return rows if await self._elicit(unit.item, rows) else None

    async def _elicit(self, item: Item, rows: list[ResultRow]) -> bool:
        """Store each result as pending, then send its follow-up; False when the run halted meanwhile."""
        if not rows or self.follow_ups is None:
            return True
        elicitation = await self.follow_ups.policy()
        for row in rows:
            elicitation.mark_pending(row)
            self.writer.add(replace(row))  # a copy: the row changes when its follow-up comes back
        try:
            if len(rows) == 1:
                await self._follow_up(elicitation, item, rows[0])
            else:
                await asyncio.gather(*(self._follow_up(elicitation, item, row) for row in rows))
        except EndpointsUnreachable as exc:  # stored as pending: the resumed run sends the follow-ups
            self.halt(str(exc))
            return False
        return True

    async def _follow_up(self, elicitation: Elicitation, item: Item, row: ResultRow) -> None:
        payload = elicitation.request(self.template, item, row, sample_seed(self.config, row.sample))
        try:
            completion = await self._complete(payload, 1)
        except (FatalInferenceError, EndpointsUnreachable):
            raise
        except InferenceError as exc:
            elicitation.failed(row, str(exc), exc.attempts)
            return
        elicitation.apply(row, item, completion)

    async def _complete(self, payload: bytes, n: int) -> Completion:
        if self.limiter is None:
            return await self.client.complete(payload, n)
        async with self.limiter.slots(n):
            return await self.client.complete(payload, n)

    async def _send(self, row: ResultRow, payload: bytes, letters: tuple[str, ...]) -> None:
        """One sample, one request; a failure becomes the row's error (retried on resume). A logprob
        reply's alternatives become the probabilities of the item's ``letters``."""
        try:
            completion = await self._complete(payload, 1)
        except (FatalInferenceError, EndpointsUnreachable):
            raise
        except InferenceError as exc:
            row.error, row.attempts = str(exc)[:2000], exc.attempts
            return
        row.response, row.reasoning, row.finish_reason = completion.content, completion.reasoning, completion.finish_reason
        row.latency_s, row.attempts = completion.latency, completion.attempts
        row.prompt_tokens, row.completion_tokens = completion.prompt_tokens, completion.completion_tokens
        if completion.top_logprobs is not None:
            probs, row.letter_probs_complete = letter_probs(completion.top_logprobs, letters)
            row.letter_probs = json.dumps(probs)

    async def _send_choices(self, messages: list[dict[str, str]], rows: list[ResultRow]) -> None:
        """Several samples in one request with ``n`` (one prefill); choice i answers rows[i].

        Each row keeps its own identity (request_hash of the single-sample request), so reuse and
        resume treat it like a sample sent alone. Usage is per request: each sample stores the prompt
        tokens and an even share of the completion tokens.
        """
        n = len(rows)
        payload = request_body(self.config.model, messages, self.params, None, n)
        try:
            completion = await self._complete(payload, n)
        except (FatalInferenceError, ChoicesRefused, EndpointsUnreachable):
            raise
        except InferenceError as exc:
            for row in rows:
                row.error, row.attempts = str(exc)[:2000], exc.attempts
            return
        share = None if completion.completion_tokens is None else round(completion.completion_tokens / n)
        for row, (content, reasoning, finish) in zip(rows, completion.choices, strict=True):
            row.response, row.reasoning, row.finish_reason = content, reasoning, finish
            row.latency_s, row.attempts = completion.latency, completion.attempts
            row.prompt_tokens, row.completion_tokens = completion.prompt_tokens, share

    async def publish(self) -> None:
        while True:
            self.progress.publish()
            metrics.QUEUE_DEPTH.labels(self.config.model).set(max(self.pending, 0))
            limit = self.client.limit if self.limiter is None else min(self.limiter.limit, self.client.limit)
            metrics.INFERENCE_CONCURRENCY_LIMIT.labels(self.config.model).set(limit)
            await asyncio.sleep(PUBLISH_INTERVAL)


def config_label(config: RunConfig, template: PromptTemplate) -> str:
    """The `config` label of run-level metrics: prompt template, generation parameters and languages, readable
    (two concurrent runs of a model on one dataset differ in at least one of them, else they are one run)."""
    return (f"{template.name}/t{config.temperature:g}/max{config.max_tokens}/n{config.samples}/"
            f"{'+'.join(config.languages)}")


async def endpoint_limiters(
    config: RunConfig, api_key: str | None, http: HttpOptions | None = None
) -> list[DynamicLimiter]:
    """One limiter per endpoint: --concurrency split evenly, else the server's own slots, else adaptive."""
    count = len(config.endpoints)
    if config.concurrency:
        share, extra = divmod(config.concurrency, count)
        return [DynamicLimiter(max(1, share + (i < extra))) for i in range(count)]
    slots = await asyncio.gather(*(server_slots(url, api_key, http) for url in config.endpoints))
    return [DynamicLimiter(n + headroom(n)) if n else AdaptiveLimiter() for n in slots]


def _pending_work(dataset: Dataset, config: RunConfig, done: set[tuple[str, str, int]],
                  ordering: Ordering | None = None, unfinished: Sequence[ResultRow] = ()) -> Iterator[Work]:
    """The work still to do in sending order (finished keys skipped), generated as the workers take it:
    in file order nothing per item is held in advance. Follow-ups left ``unfinished`` come first."""
    ordered = (ordering or Ordering()).order(_work_left(dataset, config, done), lambda unit: (unit.item.id, unit.language))
    return itertools.chain(_resumed_work(dataset, unfinished), ordered)


def _resumed_work(dataset: Dataset, unfinished: Sequence[ResultRow]) -> Iterator[Work]:
    by_key: dict[tuple[str, str], list[ResultRow]] = {}
    for row in unfinished:
        by_key.setdefault((row.item_id, row.language), []).append(row)
    if not by_key:
        return
    for item in dataset.items:
        for language in LANGUAGES:
            rows = by_key.get((item.id, language))
            if rows:
                yield Work(item, language, (), tuple(rows))


def _work_left(dataset: Dataset, config: RunConfig, done: set[tuple[str, str, int]]) -> Iterator[Work]:
    """The samples still to do of each (item, language), in file order, read as they are taken."""
    for item in dataset.items:
        for language in config.languages:
            samples = tuple(s for s in range(config.samples) if (item.id, language, s) not in done)
            if samples:
                yield Work(item, language, samples)


async def execute_run(
    config: RunConfig,
    dataset: Dataset,
    template: PromptTemplate,
    store: AsyncStore,
    grader: Grader,
    *,
    api_key: str | None = None,
    observer: RunObserver | None = None,
    status_on_cancel: str | None = "cancelled",
    retry: RetryPolicy | None = None,
    limiter: DynamicLimiter | None = None,
    http: HttpOptions | None = None,
) -> RunRecord:
    """Run (or resume) one evaluation to the end and return its final record.

    Cancelling the task stops sending, writes every finished result, and marks the run
    ``status_on_cancel`` (``None`` leaves it 'running' so that a restarted dispatcher resumes it).
    A ``limiter`` (the run's fair share of its endpoints, from the dispatcher) gates every request
    on top of the per-endpoint limits. ``http``: TLS trust, proxies and timeouts for the model servers.
    """
    template.require(config.languages)
    dataset = limited(dataset, config.limit)
    record = run_record(config.run_id or new_run_id(config.model, dataset.name), config, dataset, template)
    run = await store.call(Store.begin_run, record)
    done = await store.call(Store.completed_keys, run.id)
    pending = len(dataset.items) * len(config.languages) * config.samples - len(done)
    progress = RunProgress(model=config.model, total=run.total, dataset=dataset.name,
                           config=config_label(config, template))
    progress.seed(await store.call(Store.answered_cells, run.id))
    reusable: dict[str, ResultRow] = {}
    params = GenerationParams(max_tokens=config.max_tokens, temperature=config.temperature)
    if config.reuse and pending:
        hashes = [
            request_payload(config, template.render(u.item, u.language), params, sample)[1]
            for u in _work_left(dataset, config, done) for sample in u.samples
        ]
        reusable = await store.call(Store.reusable, run.id, hashes)
    ordering = Ordering()
    if pending:
        history_runs, expected = await store.call(Store.length_history, dataset.sha256, run.id)
        ordering = Ordering(tuple(history_runs), expected)
        await store.call(Store.set_ordering, run.id, ordering.label)
    unfinished = await store.call(Store.unfinished_elicitations, run.id) if config.elicit != "off" else []
    pending += len(unfinished)
    limiters = await endpoint_limiters(config, api_key, http)
    workers = sum(lim.maximum for lim in limiters)
    metrics.RUNS.labels("running").inc()
    store_causes: list[str] = []
    state: _Run | None = None

    def store_failed(error: BaseException) -> None:  # the writer's first failed write: stop sending at once
        store_causes.append(f"the result store cannot write: {type(error).__name__}: {error}")
        if state is not None:
            state.halt(store_causes[0])

    writer = ResultWriter(store, on_error=store_failed)
    writer.start()
    if observer is not None:
        observer.on_start(run, progress)
    status: str | None = None
    error: str | None = None
    cancelled = False
    try:
        async with EndpointRouter(
            config.endpoints, config.model, limiters, api_key=api_key, request_timeout=config.request_timeout,
            retry=retry or RetryPolicy(max_attempts=config.max_attempts), http=http,
            path=COMPLETIONS if config.scoring == "logprobs" else CHAT,
        ) as client:
            state = _Run(config, run, template, client, grader, writer, progress, observer, reusable, limiter,
                         _FollowUps(config, run.id, store, api_key, http) if config.elicit != "off" else None)
            state.pending = pending
            publisher = asyncio.create_task(state.publish())
            units = _pending_work(dataset, config, done, ordering, unfinished)
            cutter: asyncio.Task[None] | None = None
            try:
                async with asyncio.TaskGroup() as group:  # workers halt the run instead of raising
                    tasks = [group.create_task(state.worker(units)) for _ in range(min(workers, pending))]
                    cutter = asyncio.create_task(_cut_in_flight(state, tasks))
            finally:
                publisher.cancel()
                if cutter is not None:
                    cutter.cancel()
                progress.publish()
            if state.halted is not None:
                status, error = "failed", state.halted
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        metrics.RUNS.labels("running").dec()
        metrics.QUEUE_DEPTH.labels(config.model).set(0)
        progress.idle()
        if cancelled:
            progress.forget()
        await writer.close()
        if store_causes and not cancelled:
            status = "failed"
            error = store_causes[0] if error in (None, store_causes[0]) else f"{error}; {store_causes[0]}"
        try:
            final = await _finish(store, run.id, status_on_cancel if cancelled else status, error,
                                  decide=not cancelled)
        except Exception as exc:
            if writer.error is None:
                raise
            raise StoreWriteFailed(
                f"run {run.id}: {error}; {writer.unwritten} results were not saved and the run could not be "
                f"marked failed ({type(exc).__name__}: {exc}); run again with the same {{run_id}} once the store "
                "can write", mentions=("run_id",)
            ) from None
        final = await with_delta(store, final)
        if observer is not None:
            observer.on_finish(final, progress)
    return final


async def _cut_in_flight(state: _Run, tasks: list[asyncio.Task[None]]) -> None:
    """Once the run halts, give requests in flight IN_FLIGHT_GRACE to finish, then drop them (a hung server).

    A dropped request was never stored: the resumed run sends it again.
    """
    await state.stopping.wait()
    await asyncio.sleep(IN_FLIGHT_GRACE)
    for task in tasks:
        task.cancel()


async def _finish(
    store: AsyncStore, run_id: str, status: str | None, error: str | None, *, decide: bool
) -> RunRecord:
    """Record the final status; when the loop ended normally, derive it from what the store holds."""
    current = await store.call(Store.get_run, run_id)
    if status is None and decide:
        if current.done >= current.total and not await store.call(Store.pending_elicitations, run_id):
            status = "completed"
        else:
            status = "failed"
            error = (
                f"{current.total - current.done} of {current.total} items got no answer from the model; "
                "run again with the same run id to retry them"
            )
    if status is None:
        return current
    return await store.call(Store.finish_run, run_id, status, error)
