"""The grader as a real process on loopback, driven by real gRPC clients."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus import Prometheus, prometheus_binary  # tests/integration/prometheus.py

from anesbench.errors import InvalidInput
from anesbench.grader.client import RemoteGrader
from anesbench.grading import extract_answer
from anesbench.v1 import grader_pb2, grader_pb2_grpc
from tests.waiting import eventually

if TYPE_CHECKING:
    from tests.procs import GraderProcess  # the fixtures' type (tests/integration/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = {"A": "Propofol", "B": "Ketamine", "C": "Etomidate", "D": "Midazolam"}
CASES: list[tuple[dict[str, str], str, str | None]] = [
    (OPTIONS, "Ketamine preserves airway reflexes. The answer is B.", "stop"),
    (OPTIONS, "C", "stop"),
    (OPTIONS, "", "stop"),
    (OPTIONS, "Either A or D, I am not sure", "stop"),
    (OPTIONS, "The answer is (D", "length"),
    ({"A": "是", "B": "否"}, "分析……答案是 B", None),
    ({"A": "yes", "B": "no", "C": "maybe"}, "x" * 200_000 + " so the answer is C", "stop"),
]
# What the grader must answer for each of CASES, written out (pred "" = no answer): the service is
# checked against these values, not against the library it wraps.
GRADED: list[tuple[str, str]] = [
    ("B", "final_answer_phrase"),
    ("C", "lone_letter"),
    ("", "none_empty"),
    ("", "none_no_match"),
    ("D", "final_answer_phrase"),
    ("B", "final_answer_phrase"),
    ("C", "final_answer_phrase"),
]
CORPUS = ROOT / "tests" / "data" / "grader_corpus.jsonl"  # realistic replies with their options
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def corpus() -> list[tuple[dict[str, str], str, str | None]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["choices"], row["response"], row.get("finish_reason")) for row in rows]


def expected(choices: dict[str, str], response: str, finish_reason: str | None) -> tuple[str, str]:
    """The library's own answer in-process: for checking that the service transports it faithfully."""
    extraction = extract_answer(choices, response, finish_reason=finish_reason)
    return extraction.pred or "", extraction.method


def request(i: int, choices: dict[str, str], response: str, finish_reason: str | None) -> grader_pb2.GradeRequest:
    return grader_pb2.GradeRequest(
        id=f"item-{i}", choices=choices, response=response, finish_reason=finish_reason or ""
    )


async def test_grade_answers_each_request_with_its_id_letter_and_method(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        replies = [await stub.Grade(request(i, *case)) for i, case in enumerate(CASES)]
    assert [(r.id, r.pred, r.method) for r in replies] == [(f"item-{i}", *g) for i, g in enumerate(GRADED)]


async def test_stream_answers_each_batch_in_order_as_the_library_does(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        call = grader_pb2_grpc.GraderStub(channel).GradeStream()
        batches = [CASES, corpus()]
        for batch in batches:
            await call.write(grader_pb2.GradeBatch(items=[request(i, *case) for i, case in enumerate(batch)]))
        await call.done_writing()
        results = [[(r.id, r.pred, r.method) for r in result.results] async for result in call]
        assert await call.code() == grpc.StatusCode.OK
    assert results[0] == [(f"item-{i}", *g) for i, g in enumerate(GRADED)]
    # The corpus (300+ realistic replies) is the load here; its labels are checked against the
    # library in tests/unit/test_grading_corpus.py. The service must return the library's answers.
    assert results[1:] == [[(f"item-{i}", *expected(*case)) for i, case in enumerate(corpus())]]


async def test_health_and_reflection(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "anesbench.v1.Grader"):
            assert (await health.Check(health_pb2.HealthCheckRequest(service=service))).status == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await health.Check(health_pb2.HealthCheckRequest(service="anesbench.v1.Nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        queries = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="anesbench.v1.Grader"),
        ]
        listed, found = [reply async for reply in reflection.ServerReflectionInfo(iter(queries))]
        names = {service.name for service in listed.list_services_response.service}
        assert {"anesbench.v1.Grader", "grpc.health.v1.Health"} <= names
        assert found.file_descriptor_response.file_descriptor_proto  # the schema itself is served


async def _still_serving(stub: grader_pb2_grpc.GraderStub) -> None:
    reply = await stub.Grade(request(7, *CASES[0]))
    assert (reply.pred, reply.method) == GRADED[0]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (grader_pb2.GradeRequest(id="e", response="A"), "request (id 'e'): choices: must not be empty"),
        (grader_pb2.GradeRequest(id="k", choices={"a": "x"}), "request (id 'k'): choices: key 'a'"),
        (
            grader_pb2.GradeRequest(id="r", choices=OPTIONS, response="x" * ((1 << 20) + 1)),
            "request (id 'r'): response: 1048577 bytes",
        ),
    ],
    ids=["no-choices", "bad-key", "long-response"],
)
async def test_a_bad_request_is_invalid_argument_naming_id_and_field(
    grader: GraderProcess, message: grader_pb2.GradeRequest, text: str
) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Grade(message)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert text in (info.value.details() or "")
        await _still_serving(stub)


async def test_a_bad_item_in_a_stream_names_batch_item_and_field(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        call = stub.GradeStream()
        await call.write(grader_pb2.GradeBatch(items=[request(0, *CASES[0])]))
        await call.write(grader_pb2.GradeBatch(items=[request(1, *CASES[0]), grader_pb2.GradeRequest(id="x")]))
        assert len((await call.read()).results) == 1
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "batch 1, items[1] (id 'x'): choices: must not be empty"
        await _still_serving(stub)


async def test_a_batch_over_the_item_limit_is_refused(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        call = stub.GradeStream()
        await call.write(grader_pb2.GradeBatch(items=[request(i, *CASES[1]) for i in range(4097)]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert "batch 0: items: 4097 items, more than the limit of 4096" in (info.value.details() or "")
        await _still_serving(stub)


async def test_bytes_that_are_not_a_request_are_refused_before_any_handler(grader: GraderProcess) -> None:
    async with grpc.aio.insecure_channel(grader.address) as channel:
        # Not even protobuf: undecodable bytes and a message over the 64 MiB limit.
        raw = channel.unary_unary("/anesbench.v1.Grader/Grade")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\x12\x05\x0a\x01\xff\x12\x00")  # choices entry whose key is invalid UTF-8
        # grpc.aio rejects it before any handler runs, as UNKNOWN "DecodeError".
        assert info.value.code() == grpc.StatusCode.UNKNOWN and "DecodeError" in (info.value.details() or "")
        stub = grader_pb2_grpc.GraderStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Grade(grader_pb2.GradeRequest(choices=OPTIONS, response="x" * (65 << 20)))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await _still_serving(stub)


async def test_hostile_replies_are_graded_and_the_others_unaffected(grader: GraderProcess) -> None:
    # The shapes that once needed a killable worker: thousands of unclosed tags, option lines,
    # colons, letters joined by "、", long whitespace runs after a head, runs of hyphens. The rules
    # are linear in the reply, so each one is simply graded, as the library grades it, alongside
    # ordinary replies on the same stream. (256 KiB each: six at the 1 MiB limit in one batch would
    # outlast the client's stall timeout on a loaded machine.)
    size = 256 << 10
    units = ("<think>", "A. x\n", "so:\nC\n", "A、", "answer is" + " " * 400, "-")
    hostile = [(OPTIONS, unit * (size // len(unit)), "stop") for unit in units]
    cases = corpus()[:20]
    async with RemoteGrader(grader.address) as remote:
        outcomes = await asyncio.gather(*(remote.grade(*case) for case in [*cases, *hostile]))
    assert [(o.pred or "", o.method) for o in outcomes] == [expected(*case) for case in [*cases, *hostile]]


async def test_remote_grader_rejects_bad_input_locally(grader: GraderProcess) -> None:
    async with RemoteGrader(grader.address) as remote:
        with pytest.raises(InvalidInput, match="choices: key 'Z' is not a single letter A-H"):
            await remote.grade({"Z": "zebra"}, "Z", "stop")
        extraction = await remote.grade(*CASES[0])
        assert (extraction.pred or "", extraction.method) == GRADED[0]


def metrics_text(process: GraderProcess) -> str:
    with urllib.request.urlopen(process.metrics_url, timeout=5) as response:
        return str(response.read().decode())


def _missing(tool: str) -> None:
    """A missing tool fails under CI, where every tool is installed, and skips elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(tool)
    pytest.skip(tool)


async def test_metrics_pass_promtool(grader: GraderProcess) -> None:
    promtool = shutil.which("promtool") or str(ROOT / ".tools" / "bin" / "promtool")
    if not Path(promtool).exists():
        _missing("promtool not installed (scripts/install-tools.sh)")
    async with RemoteGrader(grader.address) as remote:
        await asyncio.gather(*(remote.grade(*case) for case in CASES))
    text = metrics_text(grader)
    assert "anesbench_grader_items_total{" in text
    assert 'anesbench_grader_requests_total{code="OK",rpc="GradeStream"}' in text
    check = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


async def test_prometheus_scrapes_the_grader(grader: GraderProcess) -> None:
    if prometheus_binary() is None:
        _missing("prometheus not installed (apt-get install prometheus)")
    assert grader.metrics_address is not None
    with Prometheus([grader.metrics_address]) as prometheus:
        async with RemoteGrader(grader.address) as remote:
            await asyncio.gather(*(remote.grade(*CASES[i % len(CASES)]) for i in range(500)))
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics_text(grader).splitlines()
            if line.startswith("anesbench_grader_items_total{")
        )
        assert total >= 500
        seen = await asyncio.to_thread(
            prometheus.wait_for_value, "sum(anesbench_grader_items_total)", lambda value: value >= total
        )
        assert seen == total


async def test_sigterm_drains_and_exits_zero(start_grader: Callable[..., GraderProcess]) -> None:
    process = start_grader(metrics_port=None)
    async with grpc.aio.insecure_channel(process.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        stream = grader_pb2_grpc.GraderStub(channel).GradeStream()
        await stream.write(grader_pb2.GradeBatch(items=[request(i, *case) for i, case in enumerate(CASES)]))
        assert len((await stream.read()).results) == len(CASES)

        started = time.monotonic()
        process.signal(signal.SIGTERM)
        assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
        watch.cancel()  # a health watch would otherwise hold the server for its whole grace period
        # The open GradeStream is closed cleanly so its client can move to another replica.
        assert await asyncio.wait_for(stream.read(), 5) is grpc.aio.EOF
        assert await stream.code() == grpc.StatusCode.OK
        assert await asyncio.to_thread(process.wait, 10) == 0
    assert time.monotonic() - started < 5, process.log()


async def test_remote_grader_survives_sigkill_and_restart(start_grader: Callable[..., GraderProcess]) -> None:
    first = start_grader(metrics_port=None)
    letters = "ABCD"
    cases = [(OPTIONS, f"reasoning {i} ... the answer is {letters[i % 4]}", "stop") for i in range(3000)]
    answered = 0

    async with RemoteGrader(first.address, give_up_after=30) as remote:

        async def grade(case: tuple[dict[str, str], str, str]) -> tuple[str, str]:
            nonlocal answered
            extraction = await remote.grade(*case)
            answered += 1
            return extraction.pred or "", extraction.method

        async def produce() -> list[asyncio.Task[tuple[str, str]]]:
            tasks = []
            for start in range(0, len(cases), 100):  # a steady trickle, like replies arriving
                tasks += [asyncio.create_task(grade(case)) for case in cases[start : start + 100]]
                await asyncio.sleep(0.005)
            return tasks

        producer = asyncio.create_task(produce())
        await eventually(lambda: answered >= 300, "the first grader answers 300 calls", interval=0.001)
        first.kill()  # SIGKILL: no drain, in-flight batches are lost
        answered_at_kill = answered
        second = await asyncio.to_thread(start_grader, port=first.port, metrics_port=None)
        results = await asyncio.wait_for(asyncio.gather(*await producer), 30)

    assert answered_at_kill < len(cases)
    assert second.port == first.port
    assert answered == len(cases)  # each call returned exactly once
    assert results == [(letters[i % 4], "final_answer_phrase") for i in range(len(cases))]
