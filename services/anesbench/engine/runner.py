"""The run loop: keep ``concurrency`` requests in flight, grade each answer, write each result.

Everything a run needs is passed in; the embedded CLI and the dispatcher service both call
:func:`execute_run`. A run resumes from the store: finished keys are never sent again, error rows
are sent again and replaced. Its parts: the sending order (:class:`Ordering`), the result writer
(:class:`ResultWriter`) and the follow-up turn (:class:`Elicitation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from anesbench import metrics
from anesbench.dataset import LANGUAGES, Dataset, Item
from anesbench.engine.config import RunConfig, limited, new_run_id, run_record
from anesbench.engine.progress import RunProgress
from anesbench.engine.regrade import ELICITED, grade_reply, with_delta
from anesbench.errors import (
    AnesbenchError,
    ChoicesRefused,
    EndpointsUnreachable,
    FatalInferenceError,
    GraderUnavailable,
    InferenceError,
    StoreWriteFailed,
)
from anesbench.grader import Grader
from anesbench.inference.client import CHAT, COMPLETIONS, Completion, completion_body, request_body
from anesbench.inference.constraints import (
    best_letter,
    detect_constraint,
    follow_up_body,
    follow_up_max_tokens,
    letter_probs,
    read_letter,
)
from anesbench.inference.router import EndpointRouter, RetryPolicy
from anesbench.inference.sizing import AdaptiveLimiter, headroom, server_slots
from anesbench.inference.transport import HttpOptions
from anesbench.limiter import DynamicLimiter
from anesbench.prompts import ElicitationPrompt, PromptTemplate, load_elicitation_prompt
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import ResultRow, RunRecord

log = logging.getLogger(__name__)
PUBLISH_INTERVAL = 0.5
LOGPROB = "logprob"  # the method of a logprob-scored result (pred null: the top letter was not certain)
IN_FLIGHT_GRACE = 5.0  # seconds requests in flight may still finish after the run halted (then they are dropped)
FLUSH_INTERVAL = 0.1
BATCH_SIZE = 2048  # rows that wake the writer before its interval is up
HEAD_SHARE = 0.4  # of the expected work, sent strictly longest first (see Ordering)
T = TypeVar("T")


class ResultWriter:
    """Batches result rows and writes them to the store as they arrive: ``add`` is cheap and synchronous; a
    background task, started at once, flushes every FLUSH_INTERVAL or BATCH_SIZE rows.

    A row waits at most FLUSH_INTERVAL (0.1 s) plus one write before it is durable, so a ``kill -9``
    costs at most the requests in flight and that much of answers. Rows still go in bulk (one Arrow
    write per batch). When a write fails the writer stops writing, keeps the rows it could not write,
    and tells the run through ``on_error`` so that it stops sending at once.
    """

    def __init__(self, store: AsyncStore, on_error: Callable[[BaseException], None]) -> None:
        self._store = store
        self._on_error = on_error
        self._pending: list[ResultRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self.error: BaseException | None = None  # the first failed write; nothing is written after it
        self._task = asyncio.create_task(self._loop(), name="result-writer")

    @property
    def unwritten(self) -> int:
        return len(self._pending)

    def add(self, row: ResultRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= BATCH_SIZE:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending and self.error is None:
                batch, self._pending = self._pending, []
                started = time.perf_counter()
                try:
                    # shielded: a cancelled caller must not drop a batch that left the list
                    await asyncio.shield(self._store.call(Store.write_results, batch))
                except Exception as exc:  # duckdb.Error, OSError (disk full, read-only file): the store is the truth
                    self._pending[:0] = batch
                    self.error = exc
                    log.info("writing results failed (%d rows not written): %s", len(self._pending), exc)
                    self._on_error(exc)
                    return
                metrics.STORE_FLUSH.observe(time.perf_counter() - started)
                metrics.STORE_ROWS.inc(len(batch))

    async def _loop(self) -> None:
        last = time.monotonic()
        while not self._closing and self.error is None:
            # The deadline counts from the last write's start: a slow write does not stretch the next wait.
            timeout = max(0.0, FLUSH_INTERVAL - (time.monotonic() - last))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            last = time.monotonic()
            await self.flush()

    async def close(self) -> None:
        """Stop the background task after it has written everything still pending (or failed to)."""
        self._closing = True
        self._wake.set()
        await self._task
        await self.flush()


class RunObserver(Protocol):
    """Hooks for progress display or event streams. Must not block."""

    def on_start(self, run: RunRecord, progress: RunProgress) -> None: ...

    def on_result(self, row: ResultRow, progress: RunProgress) -> None: ...

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None: ...


@dataclass(frozen=True, slots=True)
class Elicitation:
    """The follow-up turn (``--elicit``): ask the model, in the same conversation, for its final letter.

    ``unanswered`` asks where the rules found no committed answer (a reply cut off at ``max_tokens``
    included), ``all`` asks after every reply. Where the follow-up yields a letter, that letter is the
    result's ``pred`` with method ``elicited``: the model's own choice, obtained by construction where the
    server constrains decoding. Under ``all`` this holds even where the rules found a letter, which stays
    in ``pred_rules``, so the run measures how often the rules agree with the model. A follow-up that
    yields no valid letter leaves the rules' verdict; one whose request fails after its retries does too,
    with the error kept in ``elicitation_error`` (the result is not an error: the reply was usable).

    A result is stored with ``elicitation = 'pending'`` before its follow-up is sent and stored again when
    it comes back, so a crash in between keeps the reply, and the resumed run sends the follow-up only.
    """

    constraint: str  # a kind from anesbench.inference.constraints.CONSTRAINTS
    prompt: ElicitationPrompt
    model: str

    def params(self) -> str:
        """The follow-up's request parameters, as stored with each result (JSON)."""
        return json.dumps({"prompt": self.prompt.name, "prompt_sha256": self.prompt.sha256,
                           "constraint": self.constraint, "max_tokens": follow_up_max_tokens(self.constraint),
                           "temperature": 0.0}, sort_keys=True)

    def request(self, template: PromptTemplate, item: Item, row: ResultRow, seed: int | None) -> bytes:
        """The follow-up request of a result: its conversation, the reply, the question for the letter."""
        letters = tuple(item.texts[row.language].options)
        messages = self.prompt.follow_up(template.render(item, row.language), row.response or "", letters,
                                         row.language)
        return follow_up_body(self.model, messages, letters, self.constraint, seed)

    def apply(self, row: ResultRow, item: Item, reply: Completion | InferenceError) -> None:
        """The follow-up came back: its letter, read strictly, replaces the rules' verdict. One that got no
        reply after its retries leaves the verdict, and keeps the error."""
        if isinstance(reply, InferenceError):
            row.elicitation, row.elicitation_error, row.elicitation_attempts = "failed", str(reply)[:2000], reply.attempts
            return
        row.elicitation, row.elicitation_error = "done", None
        row.elicitation_response = reply.content
        row.elicitation_attempts, row.elicitation_latency_s = reply.attempts, reply.latency
        row.elicitation_prompt_tokens = reply.prompt_tokens
        row.elicitation_completion_tokens = reply.completion_tokens
        letter = read_letter(reply.content, tuple(item.texts[row.language].options), self.constraint)
        row.pred, row.method = (row.pred_rules, row.method_rules) if letter is None else (letter, ELICITED)
        row.correct = row.pred == item.answer


@dataclass(frozen=True, slots=True)
class Ordering:
    """The order pending work is sent in: the longest expected first, from earlier runs' history (``expected``:
    the relative length per (item id, language); none: file order).

    Reply lengths are heavy-tailed (chain-of-thought varies by 10x and more). Sent in file order, the
    longest replies start at random times and the slots idle while the last ones finish. Sent longest
    first (the LPT rule), the short ones fill in around them and the run ends close to its lower bound
    max(total work ÷ slots, longest request), but only if sending costs nothing: strictly sorted, the
    run ends on a burst of its shortest replies, hundreds of slots each freeing every few tens of ms,
    faster than a harness spending ~0.4 ms of CPU per reply can refill them, and the slots idle at the
    end after all (``bench/schedule_model.py``: 1.08 × the bound at 0.4 ms per reply, 1.21 at 0.6).
    So only the longest cells, holding HEAD_SHARE of the expected work, go strictly longest first; the
    rest alternate between the longest and the shortest left, which keeps the rate of replies even to
    the end (1.03 at 0.4 ms, 1.10 at 0.6; 1.03 instead of 1.007 when sending is free).

    The store knows how long each question took in earlier runs on the same dataset (any model: which
    questions are long is mostly a property of the question). Without history the file's order is kept.
    """

    runs: tuple[str, ...] = ()
    expected: dict[tuple[str, str], float] | None = None

    @property
    def label(self) -> str:
        """What the run record says: ``history:<run ids>`` or ``file``."""
        return f"history:{','.join(self.runs)}" if self.expected else "file"

    def order(self, work: Iterable[T], key: Callable[[T], tuple[str, str]]) -> Iterator[T]:
        """``work`` in sending order; ``key`` gives a unit's (item id, language). Without history this
        streams ``work`` as it comes; with history it holds it (to sort) and sends the longest expected
        first (see the class docstring). A unit without history counts as typical (1.0, the median);
        ties keep the file's order."""
        if not self.expected:
            return iter(work)
        units = list(work)
        lengths = [self.expected.get(key(unit), 1.0) for unit in units]
        longest_first = sorted(range(len(units)), key=lambda i: -lengths[i])  # stable: ties in file order
        return iter([units[i] for i in long_head_then_mixed(longest_first, lengths)])


def long_head_then_mixed(order: list[int], lengths: Sequence[float]) -> list[int]:
    """``order`` (longest first) rearranged: the longest cells holding HEAD_SHARE of the expected work go
    first, as sorted; the rest alternate between the longest and the shortest left.

    >>> long_head_then_mixed([0, 1, 2, 3, 4, 5], [10.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    [0, 1, 5, 2, 4, 3]
    """
    total = sum(lengths[i] for i in order)
    head, work = 0, 0.0
    while head < len(order) and work < HEAD_SHARE * total:
        work += lengths[order[head]]
        head += 1
    rest = order[head:]
    half = (len(rest) + 1) // 2
    pairs = itertools.zip_longest(rest[:half], reversed(rest[half:]))  # longest left, shortest left, ...
    return order[:head] + [i for pair in pairs for i in pair if i is not None]


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


def request_payload(config: RunConfig, messages: list[dict[str, str]], sample: int) -> tuple[bytes, str]:
    """The request body and its sha256: the identity of a request (model, prompt, parameters, sample)."""
    if config.scoring == "logprobs":
        payload = completion_body(config.model, messages)
    else:
        payload = request_body(config.model, messages, config.params, sample_seed(config, sample))
    return payload, hashlib.sha256(payload).hexdigest()


async def _together(calls: list[Coroutine[Any, Any, None]]) -> None:
    if len(calls) == 1:
        await calls[0]  # the common case: no task per request
    elif calls:
        await asyncio.gather(*calls)


@dataclass(eq=False)
class _Run:
    config: RunConfig
    run: RunRecord
    template: PromptTemplate
    grader: Grader
    store: AsyncStore
    progress: RunProgress
    observer: RunObserver | None
    reusable: dict[str, ResultRow]
    limiter: DynamicLimiter | None
    api_key: str | None
    http: HttpOptions | None
    pending: int
    client: EndpointRouter = field(init=False)
    writer: ResultWriter = field(init=False)
    one_by_one: bool = False  # the server refused n > 1 once: send samples one by one from then on
    halted: str | None = None  # why the run stops: no new request is sent once set
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    follow_ups: asyncio.Task[Elicitation] | None = None

    def __post_init__(self) -> None:
        # the writer's first failed write stops sending at once, and is part of the run's error whatever came first
        self.writer = ResultWriter(self.store, lambda error: self.halt(
            f"the result store cannot write: {type(error).__name__}: {error}", also=True))

    def halt(self, cause: str, *, also: bool = False) -> None:
        if self.halted is None:
            self.halted = cause
            self.stopping.set()
            log.info("run %s stops: %s", self.run.id, cause)  # the CLI prints the run's error once, at the end
        elif also:
            self.halted = f"{self.halted}; {cause}"

    async def worker(self, work: Iterator[Work]) -> None:
        """Take work until there is none or the run halts; no exception leaves a worker but cancellation.

        A unit the run halted in is not written (a follow-up stays stored as pending): the resume does it.
        """
        try:
            for unit in work:
                if self.halted is not None:
                    return
                self.pending -= len(unit.samples) + len(unit.resumed)
                if unit.resumed:  # counted already (the store's answers seeded the progress)
                    rows = [replace(row, created_at=datetime.now()) for row in unit.resumed]
                    await self._elicit(unit.item, rows)
                    for row in rows:
                        self.writer.add(row)
                    continue
                for row in await self.process(unit):
                    self.writer.add(row)
                    self.progress.record(row)
                    if self.observer is not None:
                        self.observer.on_result(row, self.progress)
        except GraderUnavailable as exc:  # retried with backoff by the grader client until its grace ran out
            self.halt(f"grader unavailable (the model's answers are not at fault): {exc}")
        except AnesbenchError as exc:  # the breaker opened; a refusing server (401/403/404); the dataset changed
            self.halt(str(exc))
        except Exception as exc:  # a bug: stop the run with what it was, keep the traceback in the log
            log.info("run %s: a worker failed", self.run.id, exc_info=True)  # in the service log, not on the CLI
            self.halt(f"internal error: {type(exc).__name__}: {exc}")

    async def process(self, unit: Work) -> list[ResultRow]:
        """Answer (reuse or send), grade and return every pending sample of one question in one language."""
        item, language = unit.item, unit.language
        messages = self.template.render(item, language)
        rows: list[ResultRow] = []
        to_send: list[tuple[ResultRow, bytes]] = []
        for sample in unit.samples:
            payload, digest = request_payload(self.config, messages, sample)
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
        if len(to_send) > 1 and not self.one_by_one:
            try:
                body = request_body(self.config.model, messages, self.config.params, None, len(to_send))
                await self._send([row for row, _ in to_send], body, letters)
                to_send = []
            except ChoicesRefused as refused:
                self.one_by_one = True
                log.warning("the server refuses n > 1 (%s); sending samples one request each", refused)
        await _together([self._send([row], payload, letters) for row, payload in to_send])
        for row in rows:
            if row.error is None and row.letter_probs is not None:  # logprob scoring: the probabilities decide
                row.pred, row.method = best_letter(json.loads(row.letter_probs)), LOGPROB
                row.correct = row.pred == item.answer
            elif row.error is None:
                await grade_reply(self.grader, item, row)
            row.created_at = datetime.now()
        if self.config.elicit != "off":
            await self._elicit(item, [r for r in rows if r.error is None and (self.config.elicit == "all" or r.pred is None)])
        return rows

    async def _elicit(self, item: Item, rows: list[ResultRow]) -> None:
        """Store each result as pending, then send its follow-up."""
        if not rows:
            return
        if self.follow_ups is None:  # what the server supports is asked once, when the first follow-up is due
            self.follow_ups = asyncio.ensure_future(self._detect())
        elicitation = await self.follow_ups
        for row in rows:
            row.elicitation, row.elicitation_params = "pending", elicitation.params()
            self.writer.add(replace(row))  # a copy: the row changes when its follow-up comes back
        await _together([self._follow_up(elicitation, item, row) for row in rows])

    async def _detect(self) -> Elicitation:
        constraint = await detect_constraint(self.config.endpoints[0], self.config.model, self.api_key, self.http)
        log.info("run %s: follow-up turns constrained by %s", self.run.id, constraint)
        await self.store.call(Store.set_elicit_constraint, self.run.id, constraint)
        return Elicitation(constraint, load_elicitation_prompt(), self.config.model)

    async def _follow_up(self, elicitation: Elicitation, item: Item, row: ResultRow) -> None:
        payload = elicitation.request(self.template, item, row, sample_seed(self.config, row.sample))
        elicitation.apply(row, item, await self._complete(payload, 1))

    async def _complete(self, payload: bytes, n: int) -> Completion | InferenceError:
        """The reply, or the error it failed with after its retries; the errors that stop the run propagate."""
        try:
            async with self.limiter.slots(n) if self.limiter is not None else contextlib.nullcontext():
                return await self.client.complete(payload, n)
        except (FatalInferenceError, ChoicesRefused, EndpointsUnreachable):
            raise
        except InferenceError as exc:
            return exc

    async def _send(self, rows: list[ResultRow], payload: bytes, letters: tuple[str, ...]) -> None:
        """One request for ``rows``; a failure becomes each row's error (retried on resume). Several samples ask
        for ``n`` choices (one prefill), choice i answering rows[i]; each row keeps the request_hash of its
        single-sample request, so reuse and resume treat it alike, and stores the prompt tokens and an even
        share of the completion tokens. A logprob reply's alternatives become the probabilities of ``letters``."""
        n = len(rows)
        completion = await self._complete(payload, n)
        if isinstance(completion, InferenceError):
            for row in rows:
                row.error, row.attempts = str(completion)[:2000], completion.attempts
            return
        share = None if completion.completion_tokens is None else round(completion.completion_tokens / n)
        for row, (content, reasoning, finish) in zip(rows, completion.choices, strict=True):
            row.response, row.reasoning, row.finish_reason = content, reasoning, finish
            row.latency_s, row.attempts = completion.latency, completion.attempts
            row.prompt_tokens, row.completion_tokens = completion.prompt_tokens, share
        if completion.top_logprobs is not None:
            probs, rows[0].letter_probs_complete = letter_probs(completion.top_logprobs, letters)
            rows[0].letter_probs = json.dumps(probs)

    async def publish(self) -> None:
        while True:
            self.progress.publish()
            metrics.QUEUE_DEPTH.labels(self.config.model).set(max(self.pending, 0))
            limit = self.client.limit if self.limiter is None else min(self.limiter.limit, self.client.limit)
            metrics.INFERENCE_CONCURRENCY_LIMIT.labels(self.config.model).set(limit)
            await asyncio.sleep(PUBLISH_INTERVAL)


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
    in file order nothing per item is held in advance. Follow-ups left ``unfinished`` come first, in file order."""
    resumed: dict[tuple[str, str], list[ResultRow]] = {}
    for row in unfinished:
        resumed.setdefault((row.item_id, row.language), []).append(row)
    yield from (Work(item, language, (), tuple(resumed[item.id, language]))
                for item in (dataset.items if resumed else ()) for language in LANGUAGES
                if (item.id, language) in resumed)
    yield from (ordering or Ordering()).order(_work_left(dataset, config, done), lambda u: (u.item.id, u.language))


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
    limiter: DynamicLimiter | None = None,
    http: HttpOptions | None = None,
) -> RunRecord:
    """Run (or resume) one evaluation to the end and return its final record (its inputs passed ``check_run``).

    Cancelling the task stops sending, writes every finished result, and marks the run
    ``status_on_cancel`` (``None`` leaves it 'running' so that a restarted dispatcher resumes it).
    A ``limiter`` (the run's fair share of its endpoints, from the dispatcher) gates every request
    on top of the per-endpoint limits. ``http``: TLS trust, proxies and timeouts for the model servers.
    """
    dataset = limited(dataset, config.limit)
    record = run_record(config.run_id or new_run_id(config.model, dataset.name), config, dataset, template)
    run = await store.call(Store.begin_run, record)
    done = await store.call(Store.completed_keys, run.id)
    pending = len(dataset.items) * len(config.languages) * config.samples - len(done)
    # the `config` label of run-level metrics: prompt template, generation parameters and languages, readable
    # (two concurrent runs of a model on one dataset differ in at least one of them, else they are one run)
    label = f"{template.name}/t{config.temperature:g}/max{config.max_tokens}/n{config.samples}/"
    progress = RunProgress(config.model, run.total, dataset.name, label + "+".join(config.languages))
    progress.seed(await store.call(Store.answered_cells, run.id))
    reusable: dict[str, ResultRow] = {}
    if config.reuse and pending:
        reusable = await store.call(Store.reusable, run.id, [
            request_payload(config, template.render(u.item, u.language), sample)[1]
            for u in _work_left(dataset, config, done) for sample in u.samples])
    ordering = Ordering()
    if pending:
        history_runs, expected = await store.call(Store.length_history, dataset.sha256, run.id)
        ordering = Ordering(tuple(history_runs), expected)
        await store.call(Store.set_ordering, run.id, ordering.label)
    unfinished = await store.call(Store.unfinished_elicitations, run.id) if config.elicit != "off" else []
    pending += len(unfinished)
    limiters = await endpoint_limiters(config, api_key, http)
    state = _Run(config, run, template, grader, store, progress, observer, reusable, limiter, api_key, http, pending)
    metrics.RUNS.labels("running").inc()
    if observer is not None:
        observer.on_start(run, progress)
    cancelled = False
    try:
        async with EndpointRouter(
            config.endpoints, config.model, limiters, api_key=api_key, request_timeout=config.request_timeout,
            retry=RetryPolicy(max_attempts=config.max_attempts), http=http,
            path=COMPLETIONS if config.scoring == "logprobs" else CHAT,
        ) as client:
            state.client = client
            units = _pending_work(dataset, config, done, ordering, unfinished)
            tasks: list[asyncio.Task[None]] = []
            helpers = [asyncio.create_task(state.publish()), asyncio.create_task(_cut_in_flight(state, tasks))]
            try:
                async with asyncio.TaskGroup() as group:  # workers halt the run instead of raising
                    workers = min(sum(lim.maximum for lim in limiters), pending)
                    tasks += [group.create_task(state.worker(units)) for _ in range(workers)]
            finally:
                for helper in helpers:
                    helper.cancel()
                progress.publish()
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        metrics.RUNS.labels("running").dec()
        metrics.QUEUE_DEPTH.labels(config.model).set(0)
        progress.idle()
        if cancelled:
            progress.forget()
        await state.writer.close()
        error = None if cancelled else state.halted
        try:
            final = await store.call(Store.get_run, run.id)
            status = status_on_cancel if cancelled else "failed"
            if not cancelled and error is None:  # the run did not halt: the store's counts decide
                if final.done >= final.total and not await store.call(Store.pending_elicitations, run.id):
                    status = "completed"
                else:
                    error = (f"{final.total - final.done} of {final.total} items got no answer from the model; "
                             "run again with the same run id to retry them")
            if status is not None:
                final = await store.call(Store.finish_run, run.id, status, error)
        except Exception as exc:
            if state.writer.error is None:
                raise
            raise StoreWriteFailed(
                f"run {run.id}: {error}; {state.writer.unwritten} results were not saved and the run could not be "
                f"marked failed ({type(exc).__name__}: {exc}); run again with the same {{run_id}} once the store "
                "can write", mentions=("run_id",)
            ) from None
        final = await with_delta(store, final)
        if observer is not None:
            observer.on_finish(final, progress)
    return final


async def _cut_in_flight(state: _Run, tasks: list[asyncio.Task[None]]) -> None:
    """Once the run halts, give requests in flight IN_FLIGHT_GRACE to finish, then drop them (a hung server):
    a dropped request was never stored, the resumed run sends it again."""
    await state.stopping.wait()
    await asyncio.sleep(IN_FLIGHT_GRACE)
    for task in tasks:
        task.cancel()
