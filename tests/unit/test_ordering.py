"""Sending order from history (longest expected first), file order without it, resume; n samples per request.

The engine runs in-process against the stand-in server on a loopback port; the stand-in records the
order requests arrive in (one request in flight at a time, so that is the sending order).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from anesbench.dataset import load_dataset
from anesbench.engine.config import RunConfig
from anesbench.engine.runner import Ordering, _pending_work, execute_run
from anesbench.grader.local import LocalGrader
from anesbench.prompts import load_template
from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.async_store import AsyncStore
from anesbench_testkit.standin.faults import FaultPlan
from anesbench_testkit.standin.server import StandinServer, start
from tests.conftest import make_records


@dataclass
class Recorder:
    """The stand-in, remembering each request's question and n in arrival order."""

    server: StandinServer
    url: str
    arrivals: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
async def standin() -> AsyncIterator[Recorder]:
    plan = FaultPlan()
    plan.update({"latency_dist": "lognormal", "latency_ms": 0.5, "sigma": 1.0, "model_sigma": 0.3,
                 "unanswerable_rate": 0.0, "tokens_per_second": 1e6})  # lengths in tokens, fast
    server = StandinServer(plan, seed=5)
    recorder = Recorder(server, "")
    chat = server.chat

    async def recording(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        recorder.arrivals.append((body["messages"][-1]["content"], int(body.get("n") or 1)))
        return await chat(request)

    server.chat = recording  # type: ignore[method-assign]
    runner, port = await start(server, "127.0.0.1", 0)
    recorder.url = f"http://127.0.0.1:{port}/v1"
    yield recorder
    await runner.cleanup()


@pytest.fixture
def dataset_file(write_jsonl: Callable[..., Path]) -> Path:
    return write_jsonl(make_records(40))


async def _run(db: Path, data: Path, url: str, model: str, *, run_id: str | None = None, samples: int = 1,
               languages: tuple[str, ...] = ("en",)) -> RunRecord:
    dataset = load_dataset(data, languages)
    store = AsyncStore(Store(db))
    try:
        config = RunConfig(model=model, endpoints=(url,), languages=languages, concurrency=1, samples=samples,
                           run_id=run_id, temperature=0.7 if samples > 1 else 0.0, max_attempts=1)
        return await execute_run(config, dataset, load_template(None), store, LocalGrader())
    finally:
        await store.close()


def _results(db: Path, run_id: str) -> list[ResultRow]:
    store = Store(db)
    try:
        return store.results(run_id)
    finally:
        store.close()


def _question_of(prompt: str, questions: dict[str, str]) -> str:
    return next(item for text, item in questions.items() if text in prompt)


def _assert_long_head_then_mixed(lengths: list[int]) -> int:
    """The expected lengths in sending order: first the longest cells, sorted, until they hold 40 % of the
    work; then the rest alternating between the longest and the shortest left. Returns the head's size."""
    total, head, work = sum(lengths), 0, 0
    while work < 0.4 * total:
        work += lengths[head]
        head += 1
    first, rest = lengths[:head], lengths[head:]
    assert first == sorted(first, reverse=True) and min(first) >= max(rest)
    longest, shortest = rest[0::2], rest[1::2]
    assert longest == sorted(longest, reverse=True) and shortest == sorted(shortest)
    assert min(longest) >= max(shortest)
    return head


async def test_second_run_sends_longest_expected_first_from_another_models_history(
    standin: Recorder, dataset_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.duckdb"
    first = await _run(db, dataset_file, standin.url, "model-a")
    assert first.status == "completed" and first.ordering == "file"
    questions = {r["en_question"]: r["id"] for r in make_records(40)}
    assert [_question_of(p, questions) for p, _ in standin.arrivals] == [r["id"] for r in make_records(40)]
    earlier = {row.item_id: row.completion_tokens or 0 for row in _results(db, first.id)}
    assert len(set(earlier.values())) > 10  # the stand-in's lengths really vary

    standin.arrivals.clear()
    second = await _run(db, dataset_file, standin.url, "model-b")
    assert second.status == "completed" and second.ordering == f"history:{first.id}"
    sent = [_question_of(p, questions) for p, _ in standin.arrivals]
    assert sorted(sent) == sorted(earlier)
    head = _assert_long_head_then_mixed([earlier[item] for item in sent])
    # and the history predicted the other model's lengths: the head sent first holds the long ones
    later = {row.item_id: row.completion_tokens or 0 for row in _results(db, second.id)}
    head_mean = sum(later[i] for i in sent[:head]) / head
    assert head_mean > 3 * sum(later[i] for i in sent[head:]) / (len(sent) - head)


async def test_resume_sends_only_unfinished_keys_in_expected_order(
    standin: Recorder, dataset_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.duckdb"
    history = await _run(db, dataset_file, standin.url, "model-a")
    expected = {row.item_id: row.completion_tokens or 0 for row in _results(db, history.id)}
    standin.server.plan.update({"fail_every": 3, "fail_kind": "400"})  # not retried: error rows
    partial = await _run(db, dataset_file, standin.url, "model-b", run_id="resumed")
    assert partial.status == "failed" and partial.failed == 40 // 3
    failed = {row.item_id for row in _results(db, "resumed") if row.error is not None}
    standin.server.plan.update({"fail_every": 0})
    standin.arrivals.clear()
    resumed = await _run(db, dataset_file, standin.url, "model-b", run_id="resumed")
    assert resumed.status == "completed" and resumed.done == 40
    assert resumed.ordering == f"history:{history.id}"  # the run's own answers are not its history
    questions = {r["en_question"]: r["id"] for r in make_records(40)}
    sent = [_question_of(p, questions) for p, _ in standin.arrivals]
    assert set(sent) == failed and len(sent) == len(failed)  # finished keys skipped, none twice
    _assert_long_head_then_mixed([expected[i] for i in sent])


def test_without_history_the_file_order_is_kept_and_streamed() -> None:
    consumed: list[tuple[str, str]] = []

    def cells() -> Iterator[tuple[str, str]]:
        for n in range(5):
            for language in ("en", "zh"):
                consumed.append((f"q{n}", language))
                yield f"q{n}", language

    streamed = Ordering().order(cells(), lambda cell: cell)
    assert next(streamed) == ("q0", "en") and consumed == [("q0", "en")]  # lazily: nothing read ahead
    assert list(streamed)[:3] == [("q0", "zh"), ("q1", "en"), ("q1", "zh")]
    ordered = Ordering(("r1",), {("q3", "en"): 9.0, ("q1", "en"): 0.2, ("q4", "zh"): 3.0})
    assert ordered.label == "history:r1" and Ordering().label == "file"
    # q3/en (9 of 19.2 expected) is the long head; the rest alternate longest and shortest left, and the
    # cells without history count as typical (1.0) and keep the file's order among themselves
    assert list(ordered.order(cells(), lambda cell: cell)) == [
        ("q3", "en"), ("q4", "zh"), ("q1", "en"), ("q0", "en"), ("q4", "en"), ("q0", "zh"), ("q3", "zh"),
        ("q1", "zh"), ("q2", "zh"), ("q2", "en"),
    ]


def test_pending_work_groups_samples_and_skips_finished_ones(dataset_file: Path) -> None:
    dataset = load_dataset(dataset_file, ("en",))
    config = RunConfig(model="m", endpoints=("http://127.0.0.1:9/v1",), samples=3)
    done = {("q-0000", "en", 0), ("q-0000", "en", 2), ("q-0001", "en", 0), ("q-0001", "en", 1),
            ("q-0001", "en", 2)}
    work = list(_pending_work(dataset, config, done))
    assert work[0].item.id == "q-0000" and work[0].samples == (1,)
    assert all(unit.item.id != "q-0001" for unit in work)
    assert work[1].item.id == "q-0002" and work[1].samples == (0, 1, 2)
    assert sum(len(unit.samples) for unit in work) == 40 * 3 - len(done)


def test_history_is_relative_per_run_and_ignores_errors_reuse_and_other_datasets(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.duckdb")
    try:
        def run(run_id: str, sha: str) -> None:
            store.begin_run(RunRecord(
                id=run_id, model=run_id, endpoint="e", dataset_name="d", dataset_sha256=sha, prompt_template="t",
                prompt_sha256="p", max_tokens=16, temperature=0.0, samples=1, languages=["en"],
                harness_version="0", config_hash=run_id, total=3))

        def row(run_id: str, item: str, tokens: int | None, latency: float, **extra: Any) -> ResultRow:
            return ResultRow(run_id=run_id, item_id=item, language="en", sample=0, level=1, answer="A",
                             request_hash=f"{run_id}{item}", response="x", attempts=1, completion_tokens=tokens,
                             latency_s=latency, **extra)

        run("fast", "s")
        run("slow", "s")
        run("other", "t")
        run("current", "s")
        # tokens in "fast"; "slow" lacks tokens on one row, so its latencies are used (10x slower model)
        store.write_results([row("fast", "a", 100, 9.0), row("fast", "b", 200, 9.0), row("fast", "c", 400, 9.0)])
        store.write_results([row("slow", "a", None, 10.0), row("slow", "b", 5, 20.0), row("slow", "c", 1, 40.0),
                             row("slow", "x", 1, 1.0, error="boom"), row("slow", "y", 1, 1.0, reused_from="fast")])
        store.write_results([row("other", "a", 1, 1000.0)])
        store.write_results([row("current", "c", 1, 1000.0)])
        runs, expected = store.length_history("s", "current")
        assert sorted(runs) == ["fast", "slow"]
        assert set(expected) == {("a", "en"), ("b", "en"), ("c", "en")}
        assert expected[("a", "en")] == pytest.approx(0.5) and expected[("c", "en")] == pytest.approx(2.0)
        assert store.length_history("s", "current", runs=1)[0] == ["slow"]  # the newest first
        assert store.length_history("none", "current") == ([], {})
        store.set_ordering("current", "history:fast,slow")
        assert store.get_run("current").ordering == "history:fast,slow"
    finally:
        store.close()


async def test_samples_share_one_request_with_n_and_fall_back_when_refused(
    standin: Recorder, dataset_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "n.duckdb"
    run = await _run(db, dataset_file, standin.url, "m", run_id="n4", samples=4)
    assert run.status == "completed" and run.done == 160
    assert [n for _, n in standin.arrivals] == [4] * 40  # one request per question, four choices each
    rows = _results(db, "n4")
    assert {(row.item_id, row.sample) for row in rows} == {(f"q-{i:04d}", s) for i in range(40) for s in range(4)}
    assert len({row.request_hash for row in rows}) == 160  # each sample keeps its own identity
    assert len({row.response for row in rows if row.item_id == "q-0007"}) > 1  # the choices differ

    standin.server.plan.update({"accept_n": False})
    standin.arrivals.clear()
    refused = await _run(db, dataset_file, standin.url, "m", run_id="one-by-one", samples=3)
    assert refused.status == "completed" and refused.done == 120
    # the first request asked for n = 3 and was refused; every sample then went alone, none lost or twice
    assert standin.arrivals[0][1] == 3 and [n for _, n in standin.arrivals[1:]] == [1] * 120
    hashes = {row.request_hash for row in _results(db, "one-by-one")}
    assert len(hashes) == 120
