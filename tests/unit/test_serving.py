"""anesbench.serving: the one exception -> status mapping, the @rpc decorator and the server lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from anesbench import errors
from anesbench.serving import ServeConfig, run
from anesbench.serving.status import INTERNAL_MESSAGE, rpc, status_for
from anesbench.v1 import grader_pb2, grader_pb2_grpc
from tests.waiting import eventually, wait_event

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ConfigConflict("bad"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.NotFound("bad"), grpc.StatusCode.NOT_FOUND),
        (errors.PermissionDenied("bad"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.InferenceError("bad"), grpc.StatusCode.UNAVAILABLE),
        (errors.RetryableInferenceError("bad", cause="timeout"), grpc.StatusCode.UNAVAILABLE),
        (errors.GraderUnavailable("bad"), grpc.StatusCode.UNAVAILABLE),
        (errors.RunFailed("bad"), grpc.StatusCode.ABORTED),
    ],
)
def test_domain_errors_map_to_their_status_code_with_their_message(error: Exception, code: grpc.StatusCode) -> None:
    assert status_for(error) == (code, "bad")


def test_unexpected_errors_are_internal_and_say_nothing() -> None:
    assert status_for(KeyError("/etc/secret")) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    assert status_for(errors.AnesbenchError("not one of ours on purpose")) == (
        grpc.StatusCode.INTERNAL,
        INTERNAL_MESSAGE,
    )


def test_long_messages_are_cut_to_fit_a_trailer() -> None:
    code, message = status_for(errors.InvalidInput("x" * 100_000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(message) <= 2000 and message.endswith("...")


def test_rpc_refuses_plain_functions() -> None:
    with pytest.raises(TypeError):
        rpc()(lambda self, request, context: None)


# --- @rpc on a real server ------------------------------------------------------------------------
ERRORS: dict[str, Exception] = {
    "invalid": errors.InvalidInput("items[3] (id 'q'): choices: must not be empty"),
    "conflict": errors.ConfigConflict("run r1 exists with another spec"),
    "bug": RuntimeError("password=hunter2"),
}


class Raising(grader_pb2_grpc.GraderServicer):
    """Raises the error named by the request's ``response``; records every outcome.

    ``response="sleep"`` sets ``sleeping`` and then hangs, so a test can cancel a call it knows is running.
    """

    outcomes: ClassVar[list[tuple[str, grpc.StatusCode]]] = []
    sleeping: ClassVar[asyncio.Event]

    @staticmethod
    def record(name: str, code: grpc.StatusCode) -> None:
        Raising.outcomes.append((name, code))

    @rpc(observe=record)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        if request.response == "sleep":
            Raising.sleeping.set()
            await asyncio.sleep(10)  # a call that is still running when the client cancels it
        if request.response == "abort":
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "handler's own abort")
        if request.response in ERRORS:
            raise ERRORS[request.response]
        return grader_pb2.GradeResponse(id=request.id, pred="A", method="test")

    @rpc(observe=record)
    async def GradeStream(
        self, request_iterator: AsyncIterator[grader_pb2.GradeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[grader_pb2.GradeBatchResult]:
        async for batch in request_iterator:
            for item in batch.items:
                if item.response in ERRORS:
                    raise ERRORS[item.response]
            yield grader_pb2.GradeBatchResult(results=[grader_pb2.GradeResponse(id=i.id) for i in batch.items])


@pytest.fixture
async def raising_stub() -> AsyncIterator[grader_pb2_grpc.GraderStub]:
    Raising.outcomes = []
    Raising.sleeping = asyncio.Event()
    server = grpc.aio.server()
    grader_pb2_grpc.add_GraderServicer_to_server(Raising(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield grader_pb2_grpc.GraderStub(channel)
    await server.stop(None)


async def test_a_unary_success_is_observed_as_ok(raising_stub: grader_pb2_grpc.GraderStub) -> None:
    assert (await raising_stub.Grade(grader_pb2.GradeRequest(id="ok"))).pred == "A"
    await eventually(lambda: Raising.outcomes, "the observer runs when the handler returns")
    assert Raising.outcomes == [("Grade", grpc.StatusCode.OK)]


@pytest.mark.parametrize(
    ("response", "code", "details"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "items[3] (id 'q'): choices: must not be empty"),
        ("conflict", grpc.StatusCode.FAILED_PRECONDITION, "run r1 exists with another spec"),
        ("bug", grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE),
        ("abort", grpc.StatusCode.OUT_OF_RANGE, "handler's own abort"),
    ],
)
async def test_unary_errors_become_status_codes(
    raising_stub: grader_pb2_grpc.GraderStub, response: str, code: grpc.StatusCode, details: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raising_stub.Grade(grader_pb2.GradeRequest(response=response))
    assert (info.value.code(), info.value.details()) == (code, details)
    await eventually(lambda: Raising.outcomes, "the observer runs when the handler unwinds (after the status is sent)")
    assert Raising.outcomes == [("Grade", code)]


async def test_a_bug_is_logged_with_its_traceback_and_the_client_never_sees_it(
    raising_stub: grader_pb2_grpc.GraderStub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="anesbench.serving"):
        for response in ("invalid", "conflict", "bug", "abort"):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raising_stub.Grade(grader_pb2.GradeRequest(response=response))
            assert "hunter2" not in (info.value.details() or "")
    # Only the bug is logged with its traceback, for the operator; domain errors are not logged as errors.
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [ERRORS["bug"]]


async def test_stream_errors_become_status_codes_after_earlier_results(
    raising_stub: grader_pb2_grpc.GraderStub,
) -> None:
    call = raising_stub.GradeStream()
    await call.write(grader_pb2.GradeBatch(items=[grader_pb2.GradeRequest(id="1")]))
    assert [r.id for r in (await call.read()).results] == ["1"]
    await call.write(grader_pb2.GradeBatch(items=[grader_pb2.GradeRequest(id="2", response="invalid")]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await eventually(lambda: Raising.outcomes, "the observer runs when the handler unwinds")
    assert Raising.outcomes == [("GradeStream", grpc.StatusCode.INVALID_ARGUMENT)]


async def test_a_finished_stream_is_observed_as_ok(raising_stub: grader_pb2_grpc.GraderStub) -> None:
    finished = raising_stub.GradeStream()
    await finished.done_writing()
    assert [r async for r in finished] == []
    await eventually(lambda: Raising.outcomes, "the observer runs when the handler unwinds")
    assert Raising.outcomes == [("GradeStream", grpc.StatusCode.OK)]


async def test_a_cancelled_call_is_observed_as_cancelled(raising_stub: grader_pb2_grpc.GraderStub) -> None:
    slow = raising_stub.Grade(grader_pb2.GradeRequest(response="sleep"))
    await wait_event(Raising.sleeping, "the handler is running")
    slow.cancel()
    await eventually(lambda: Raising.outcomes, "the observer runs when the handler unwinds")
    assert Raising.outcomes == [("Grade", grpc.StatusCode.CANCELLED)]


# --- lifecycle ------------------------------------------------------------------------------------
class SlowService:
    """A Grader whose Grade takes ``delay`` seconds; records the lifecycle calls it gets.

    ``in_flight`` is set once a Grade call runs; a call waits for ``release`` before its ``delay``
    (set from the start; a test clears it to hold a call in flight for as long as it needs).
    """

    service_names = ("anesbench.v1.Grader",)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.may_start = asyncio.Event()
        self.may_start.set()
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        service = self

        class Servicer(grader_pb2_grpc.GraderServicer):
            @rpc()
            async def Grade(
                self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
            ) -> grader_pb2.GradeResponse:
                service.in_flight.set()
                await service.release.wait()
                await asyncio.sleep(service.delay)  # the work itself
                return grader_pb2.GradeResponse(id=request.id)

        self.servicer = Servicer()

    def register(self, server: grpc.aio.Server) -> None:
        grader_pb2_grpc.add_GraderServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        self.calls.append("start")
        await self.may_start.wait()

    def drain(self) -> None:
        self.calls.append("drain")

    async def shutdown(self) -> None:
        self.calls.append("shutdown")


class Running:
    def __init__(self, service: SlowService, config: ServeConfig) -> None:
        self.stop = asyncio.Event()
        self.lines: list[str] = []
        self.task = asyncio.create_task(run(service, config, stop=self.stop, announce=self.lines.append))

    async def address(self) -> str:
        await eventually(lambda: self.lines or self.task.done(), "the server announces its address")
        assert self.lines, f"the server exited with {self.task.result()} before announcing itself"
        return self.lines[0].removeprefix("listening on ")


@pytest.fixture
def config() -> Iterator[ServeConfig]:
    yield ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_seconds=5.0)


async def _until_serving(watch: grpc.aio.UnaryStreamCall) -> None:
    while (await watch.read()).status != SERVING:
        pass


async def test_the_server_announces_its_grpc_and_metrics_addresses(config: ServeConfig) -> None:
    running = Running(SlowService(), config)
    await running.address()
    assert running.lines[0].startswith("listening on 127.0.0.1:") and running.lines[1].startswith(
        "metrics on 127.0.0.1:"
    )
    running.stop.set()
    assert await asyncio.wait_for(running.task, 5) == 0


async def test_health_is_not_serving_until_the_service_has_started(config: ServeConfig) -> None:
    service = SlowService()
    service.may_start.clear()
    running = Running(service, config)
    async with grpc.aio.insecure_channel(await running.address()) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "anesbench.v1.Grader"):
            assert (await health.Check(health_pb2.HealthCheckRequest(service=name))).status == NOT_SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == NOT_SERVING
        service.may_start.set()
        assert (await watch.read()).status == SERVING
        watch.cancel()
        running.stop.set()
        assert await asyncio.wait_for(running.task, 5) == 0


async def test_drain_turns_health_not_serving_and_inflight_rpcs_finish(config: ServeConfig) -> None:
    service = SlowService(delay=0.3)
    running = Running(service, config)
    async with grpc.aio.insecure_channel(await running.address()) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        await asyncio.wait_for(_until_serving(watch), 10)
        service.release.clear()  # the slow call stays in flight until the drain has begun
        slow = asyncio.ensure_future(grader_pb2_grpc.GraderStub(channel).Grade(grader_pb2.GradeRequest(id="slow")))
        await wait_event(service.in_flight, "the slow call is in flight")
        running.stop.set()
        assert (await watch.read()).status == NOT_SERVING
        watch.cancel()
        service.release.set()
        assert (await slow).id == "slow"  # within the grace period
        assert await asyncio.wait_for(running.task, 5) == 0
    assert service.calls == ["start", "drain", "shutdown"]


async def test_grace_is_bounded(config: ServeConfig) -> None:
    service = SlowService(delay=30)
    running = Running(service, ServeConfig(host="127.0.0.1", port=0, grace_seconds=0.2))
    async with grpc.aio.insecure_channel(await running.address()) as channel:
        stuck = asyncio.ensure_future(grader_pb2_grpc.GraderStub(channel).Grade(grader_pb2.GradeRequest()))
        await wait_event(service.in_flight, "the stuck call is in flight")
        running.stop.set()
        assert await asyncio.wait_for(running.task, 3) == 0
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stuck
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # cut off at the end of the grace: retry elsewhere


async def test_busy_port_is_exit_code_1(config: ServeConfig) -> None:
    first = Running(SlowService(), ServeConfig(host="127.0.0.1", port=0))
    port = int((await first.address()).rsplit(":", 1)[1])
    second = await run(SlowService(), ServeConfig(host="127.0.0.1", port=port), stop=asyncio.Event(), announce=print)
    assert second == 1
    first.stop.set()
    assert await first.task == 0


async def test_a_service_that_cannot_start_exits_1_after_cleaning_up() -> None:
    class Broken(SlowService):
        async def start(self) -> None:
            self.calls.append("start")
            raise OSError("cannot open the store")

    service = Broken()
    lines: list[str] = []
    assert await run(service, ServeConfig(host="127.0.0.1", port=0), stop=asyncio.Event(), announce=lines.append) == 1
    assert service.calls == ["start", "shutdown"]
