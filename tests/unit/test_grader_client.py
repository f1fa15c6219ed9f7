"""RemoteGrader against an in-process grader on loopback: batching, limits, reconnects, failure modes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest

from anesbench.errors import GraderUnavailable, InvalidInput
from anesbench.grader import LocalGrader
from anesbench.grader.client import RemoteGrader
from anesbench.grader.server import GraderServicer, as_item
from anesbench.grading import extract_answer
from anesbench.serving import ServeConfig, run
from anesbench.v1 import grader_pb2, grader_pb2_grpc
from tests.waiting import eventually, wait_event

CORPUS = Path(__file__).resolve().parents[1] / "data" / "grader_corpus.jsonl"
Case = tuple[dict[str, str], str, str | None]


def corpus() -> list[Case]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["choices"], row["response"], row.get("finish_reason")) for row in rows]


def expected(case: Case) -> tuple[str | None, str]:
    """The library's answer in-process: what a faithful transport must hand back (the extractor's
    own correctness is checked against labels in tests/unit/test_grading*.py)."""
    extraction = extract_answer(case[0], case[1], finish_reason=case[2])
    return extraction.pred, extraction.method


def pairs(extractions: Sequence[object]) -> list[tuple[str | None, str]]:
    return [(e.pred, e.method) for e in extractions]  # type: ignore[attr-defined]


class Recording(GraderServicer):
    """The real servicer, remembering each batch it graded and able to hold them at a gate.

    ``received`` is set when the first batch arrives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.received = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def _grade(self, requests: Sequence[grader_pb2.GradeRequest]) -> list[grader_pb2.GradeResponse]:
        self.batches.append([request.response for request in requests])
        self.received.set()
        await self.gate.wait()
        return await super()._grade(requests)


class Server:
    """An in-process grpc.aio server for one servicer."""

    def __init__(self, servicer: grader_pb2_grpc.GraderServicer) -> None:
        self.servicer = servicer
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> Server:
        self.server = grpc.aio.server()
        grader_pb2_grpc.add_GraderServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        assert self.server is not None
        await self.server.stop(grace)


@pytest.fixture
async def recording() -> AsyncIterator[Server]:
    server = await Server(Recording()).start()
    yield server
    await server.stop()


async def test_concurrent_calls_share_batches_and_match_the_library(recording: Server) -> None:
    cases = corpus() * 5
    async with RemoteGrader(recording.target) as grader:
        results = await asyncio.gather(*(grader.grade(*case) for case in cases))
    assert pairs(results) == [expected(case) for case in cases]
    sizes = [len(batch) for batch in recording.servicer.batches]  # type: ignore[attr-defined]
    assert sum(sizes) == len(cases) and max(sizes) == 256
    full = -(-len(cases) // 256)
    assert len(sizes) <= 2 * full  # a few thousand calls in full batches of 256, not one message each


async def test_a_lone_call_is_sent_alone_without_waiting_for_a_full_batch(recording: Server) -> None:
    case = corpus()[0]
    async with RemoteGrader(recording.target) as grader:
        await grader.grade(*case)  # connect first
        # The deadline only tells "sent after the linger" from "held until 255 more calls come".
        assert pairs([await asyncio.wait_for(grader.grade(*case), 10)]) == [expected(case)]
    assert [len(batch) for batch in recording.servicer.batches] == [1, 1]  # type: ignore[attr-defined]


async def test_batches_stay_under_the_byte_budget(recording: Server) -> None:
    case = ({"A": "yes", "B": "no"}, "x" * 10_000 + " The answer is B.", "stop")
    async with RemoteGrader(recording.target, max_batch_bytes=64 << 10) as grader:
        results = await asyncio.gather(*(grader.grade(*case) for _ in range(40)))
    assert pairs(results) == [("B", "final_answer_phrase")] * 40
    assert max(len(batch) for batch in recording.servicer.batches) <= 7  # type: ignore[attr-defined]


async def test_bad_input_is_rejected_before_sending(recording: Server) -> None:
    async with RemoteGrader(recording.target) as grader:
        with pytest.raises(InvalidInput, match=r"grade request: choices: key 'a' is not a single letter A-H"):
            await grader.grade({"a": "lowercase"}, "a", "stop")
        with pytest.raises(InvalidInput, match=r"grade request: response: 1048577 bytes"):
            await grader.grade({"A": "x"}, "é" * (1 << 19) + "x", "stop")  # counted in UTF-8 bytes
    assert recording.servicer.batches == []  # type: ignore[attr-defined]


def item(i: int = 0, **fields: object) -> grader_pb2.GradeRequest:
    values: dict[str, object] = {"id": f"q{i}", "choices": {"A": "yes", "B": "no"}, "response": "B"}
    return grader_pb2.GradeRequest(**{**values, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (item(1, choices={}), "items[1] (id 'q1'): choices: must not be empty"),
        (item(1, choices={"AB": "x"}), "items[1] (id 'q1'): choices: key 'AB' is not a single letter A-H"),
        (item(1, choices={"I": "x"}), "items[1] (id 'q1'): choices: key 'I' is not a single letter A-H"),
        (
            item(1, choices={"A": "x" * 65537}),
            "items[1] (id 'q1'): choices[A]: 65537 bytes, more than the limit of 65536",
        ),
        (item(1, response="x" * (1 << 20) + "y"), "items[1] (id 'q1'): response: 1048577 bytes"),
        (item(1, id="i" * 300), "items[1] (id 'iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii'...): id: 300 bytes"),
        (
            item(1, finish_reason="s" * 65),
            "items[1] (id 'q1'): finish_reason: 65 bytes, more than the limit of 64",
        ),
    ],
)
async def test_the_server_names_the_batch_item_and_field(
    recording: Server, bad: grader_pb2.GradeRequest, message: str
) -> None:
    async with grpc.aio.insecure_channel(recording.target) as channel:
        call = grader_pb2_grpc.GraderStub(channel).GradeStream()
        await call.write(grader_pb2.GradeBatch(items=[item()]))
        await call.write(grader_pb2.GradeBatch(items=[item(0), bad]))
        assert len((await call.read()).results) == 1
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(f"batch 1, {message}")


async def test_limits_are_inclusive(recording: Server) -> None:
    edge = item(response="x" * (1 << 20), choices={k: "y" * 65536 for k in "ABCDEFGH"}, id="i" * 256)
    async with grpc.aio.insecure_channel(recording.target) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        assert (await stub.Grade(edge)).id == edge.id
        call = stub.GradeStream()
        await call.write(grader_pb2.GradeBatch(items=[item(i) for i in range(4096)]))
        assert len((await call.read()).results) == 4096
        await call.write(grader_pb2.GradeBatch(items=[item(i) for i in range(4097)]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
    assert info.value.details() == "batch 1: items: 4097 items, more than the limit of 4096"


async def test_unanswered_requests_are_resent_after_the_server_dies(recording: Server) -> None:
    servicer: Recording = recording.servicer  # type: ignore[assignment]
    servicer.gate.clear()  # the first replica takes requests and never answers them
    cases = corpus() * 2
    async with RemoteGrader(recording.target) as grader:
        calls = asyncio.gather(*(grader.grade(*case) for case in cases))
        await wait_event(servicer.received, "the first replica has taken requests")
        await recording.stop(None)  # streams die with requests in flight
        replacement = await Server(GraderServicer()).start(recording.port)
        results = await asyncio.wait_for(calls, 10)
        await replacement.stop()
    assert pairs(results) == [expected(case) for case in cases]


async def test_a_draining_replica_hands_its_clients_over() -> None:
    """The real lifecycle: SIGTERM-style drain of one replica, a new one on the same address."""
    first_stop = asyncio.Event()
    lines: list[str] = []
    first = asyncio.create_task(run(GraderServicer(), ServeConfig("127.0.0.1", 0), stop=first_stop, announce=lines.append))
    await eventually(lambda: lines, "the first replica announces its address")
    target = lines[0].removeprefix("listening on ")
    cases = corpus() * 10
    answered = asyncio.Event()
    async with RemoteGrader(target) as grader:

        async def trickle() -> list[object]:
            # Calls keep arriving, 50 at a time, before, during and after the first replica drains.
            tasks = []
            for start in range(0, len(cases), 50):
                chunk = [asyncio.create_task(grader.grade(*case)) for case in cases[start : start + 50]]
                for task in chunk:
                    task.add_done_callback(lambda _: answered.set())
                tasks += chunk
                if start == 500:
                    await first_stop.wait()  # the rest arrive once the drain has begun
                await asyncio.sleep(0.002)  # the pace at which clients send
            return list(await asyncio.gather(*tasks))

        results = asyncio.create_task(trickle())
        await wait_event(answered, "the first replica answers a call")
        first_stop.set()
        assert await first == 0
        second_stop = asyncio.Event()
        port = int(target.rsplit(":", 1)[1])
        second = asyncio.create_task(run(GraderServicer(), ServeConfig("127.0.0.1", port), stop=second_stop, announce=print))
        assert pairs(await asyncio.wait_for(results, 15)) == [expected(case) for case in cases]
        second_stop.set()
        assert await second == 0


class Stubborn(GraderServicer):
    """A stricter (newer) grader: refuses replies that say POISON, also inside a stream."""

    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        if request.response == "POISON":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request (id '{request.id}'): response: poison")
        return await super().Grade(request, context)

    async def GradeStream(  # type: ignore[override]
        self, request_iterator: AsyncIterator[grader_pb2.GradeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grader_pb2.GradeBatchResult]:
        async for batch in request_iterator:
            if any(i.response == "POISON" for i in batch.items):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "batch contains poison")
            yield grader_pb2.GradeBatchResult(results=await self._grade(batch.items))


async def test_one_rejected_reply_does_not_fail_its_batch_mates() -> None:
    server = await Server(Stubborn()).start()
    cases = corpus()[:50]
    async with RemoteGrader(server.target) as grader:
        outcomes = await asyncio.gather(
            *(grader.grade(*case) for case in cases),
            grader.grade({"A": "x"}, "POISON", "stop"),
            return_exceptions=True,
        )
    await server.stop()
    assert isinstance(outcomes[-1], InvalidInput) and "response: poison" in str(outcomes[-1])
    assert pairs(outcomes[:-1]) == [expected(case) for case in cases]


class Wedged(GraderServicer):
    """The first stream reads requests and never answers; later streams work."""

    def __init__(self) -> None:
        super().__init__()
        self.streams = 0

    async def GradeStream(  # type: ignore[override]
        self, request_iterator: AsyncIterator[grader_pb2.GradeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grader_pb2.GradeBatchResult]:
        self.streams += 1
        if self.streams == 1:
            async for _ in request_iterator:
                pass
        async for result in super().GradeStream(request_iterator, context):
            yield result


async def test_a_wedged_stream_is_abandoned() -> None:
    servicer = Wedged()
    server = await Server(servicer).start()
    case = corpus()[0]
    async with RemoteGrader(server.target, stall_timeout=0.3) as grader:
        # Well before give_up_after (30 s): the wedged stream was dropped and the call sent on a new one.
        assert pairs([await asyncio.wait_for(grader.grade(*case), 15)]) == [expected(case)]
    assert servicer.streams == 2
    await server.stop()


async def test_no_grader_means_grader_unavailable_after_the_bounded_wait() -> None:
    server = await Server(GraderServicer()).start()
    target = server.target
    await server.stop()  # nothing listens there any more
    # Only the expiry of give_up_after raises "did not answer within": it waited for the grader as long as told.
    async with RemoteGrader(target, give_up_after=0.5) as grader:
        with pytest.raises(GraderUnavailable, match=f"grader at {target} did not answer within 0.5 s "
                                                    r"\(last error: not connected yet\)"):
            await asyncio.wait_for(grader.grade(*corpus()[0]), 15)


async def test_close_fails_waiting_calls_and_later_ones(recording: Server) -> None:
    recording.servicer.gate.clear()  # type: ignore[attr-defined]
    grader = RemoteGrader(recording.target)
    waiting = asyncio.ensure_future(grader.grade(*corpus()[0]))
    await wait_event(recording.servicer.received, "the call reached the server")  # type: ignore[attr-defined]
    await grader.close()
    with pytest.raises(GraderUnavailable, match="closed"):
        await waiting
    with pytest.raises(GraderUnavailable, match="closed"):
        await grader.grade(*corpus()[0])


async def test_a_cancelled_call_is_not_sent(recording: Server) -> None:
    cases = corpus()[:2]
    async with RemoteGrader(recording.target, max_delay=0.05) as grader:
        abandoned = asyncio.ensure_future(grader.grade(*cases[0]))
        kept = asyncio.ensure_future(grader.grade(*cases[1]))
        # Both calls are queued (and lingering for company) before one of them is cancelled.
        await eventually(lambda: len(grader._queue.pending) == 2, "both calls are queued", interval=0)
        abandoned.cancel()
        assert pairs([await kept]) == [expected(cases[1])]
    assert recording.servicer.batches == [[cases[1][1]]]  # type: ignore[attr-defined]


OPTIONS = {"A": "Propofol", "B": "Ketamine", "C": "Etomidate", "D": "Midazolam"}


@pytest.mark.parametrize(
    ("case", "graded"),
    [
        ((OPTIONS, "Ketamine preserves airway reflexes. The answer is B.", "stop"), ("B", "final_answer_phrase")),
        ((OPTIONS, "C", "stop"), ("C", "lone_letter")),
        ((OPTIONS, "\\boxed{D}", "stop"), ("D", "boxed")),
        (({"A": "是", "B": "否"}, "分析……答案是 B", None), ("B", "final_answer_phrase")),
        ((OPTIONS, "", "stop"), (None, "none_empty")),
        ((OPTIONS, "It could be A or C.", "stop"), (None, "none_ambiguous")),
        ((OPTIONS, "Let me think step by step about the airway", "length"), (None, "none_truncated")),
    ],
)
async def test_local_grader_grades_in_process(case: Case, graded: tuple[str | None, str]) -> None:
    grader = LocalGrader()
    assert pairs([await grader.grade(*case)]) == [graded]
    await grader.close()


def test_choices_reach_the_library_in_letter_order() -> None:
    choices, response, finish_reason = as_item(item(choices={"D": "d", "B": "b", "A": "a", "C": "c"}))
    assert list(choices) == ["A", "B", "C", "D"]
    assert (response, finish_reason) == ("B", None)
