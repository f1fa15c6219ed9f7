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
from anesbench.serving import INTERNAL_MESSAGE, ServeConfig, rpc, run, status_for
from anesbench.v1 import grader_pb2, grader_pb2_grpc

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
    """Raises the error named by the request's ``response``; records every outcome."""

    outcomes: ClassVar[list[tuple[str, grpc.StatusCode]]] = []

    @staticmethod
    def record(name: str, code: grpc.StatusCode) -> None:
        Raising.outcomes.append((name, code))

    @rpc(observe=record)
    async def Grade(
        self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
    ) -> grader_pb2.GradeResponse:
        if request.response == "sleep":
            await asyncio.sleep(10)
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
    server = grpc.aio.server()
    grader_pb2_grpc.add_GraderServicer_to_server(Raising(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield grader_pb2_grpc.GraderStub(channel)
    await server.stop(None)


async def test_unary_errors_become_status_codes(
    raising_stub: grader_pb2_grpc.GraderStub, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await raising_stub.Grade(grader_pb2.GradeRequest(id="ok"))).pred == "A"
    expected = {
        "invalid": (grpc.StatusCode.INVALID_ARGUMENT, "items[3] (id 'q'): choices: must not be empty"),
        "conflict": (grpc.StatusCode.FAILED_PRECONDITION, "run r1 exists with another spec"),
        "bug": (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE),
        "abort": (grpc.StatusCode.OUT_OF_RANGE, "handler's own abort"),
    }
    with caplog.at_level(logging.ERROR, logger="anesbench.serving"):
        for response, (code, details) in expected.items():
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raising_stub.Grade(grader_pb2.GradeRequest(response=response))
            assert (info.value.code(), info.value.details()) == (code, details)
    # The bug is logged with its traceback for the operator; the client never saw the secret.
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [ERRORS["bug"]]
    assert Raising.outcomes == [
        ("Grade", grpc.StatusCode.OK),
        ("Grade", grpc.StatusCode.INVALID_ARGUMENT),
        ("Grade", grpc.StatusCode.FAILED_PRECONDITION),
        ("Grade", grpc.StatusCode.INTERNAL),
        ("Grade", grpc.StatusCode.OUT_OF_RANGE),
    ]


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
    await asyncio.sleep(0.05)  # the observer runs when the handler unwinds
    assert Raising.outcomes == [("GradeStream", grpc.StatusCode.INVALID_ARGUMENT)]


async def test_outcomes_of_finished_and_cancelled_calls(raising_stub: grader_pb2_grpc.GraderStub) -> None:
    finished = raising_stub.GradeStream()
    await finished.done_writing()
    assert [r async for r in finished] == []
    slow = raising_stub.Grade(grader_pb2.GradeRequest(response="sleep"))
    await asyncio.sleep(0.05)
    slow.cancel()
    for _ in range(100):
        if len(Raising.outcomes) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(Raising.outcomes) == [
        ("Grade", grpc.StatusCode.CANCELLED),
        ("GradeStream", grpc.StatusCode.OK),
    ]


# --- lifecycle ------------------------------------------------------------------------------------
class SlowService:
    """A Grader whose Grade takes ``delay`` seconds; records the lifecycle calls it gets."""

    service_names = ("anesbench.v1.Grader",)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.may_start = asyncio.Event()
        self.may_start.set()
        service = self

        class Servicer(grader_pb2_grpc.GraderServicer):
            @rpc()
            async def Grade(
                self, request: grader_pb2.GradeRequest, context: grpc.aio.ServicerContext
            ) -> grader_pb2.GradeResponse:
                await asyncio.sleep(service.delay)
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
        for _ in range(500):
            if self.lines:
                return self.lines[0].removeprefix("listening on ")
            await asyncio.sleep(0.01)
        raise TimeoutError(f"server never announced itself: {self.lines}")


@pytest.fixture
def config() -> Iterator[ServeConfig]:
    yield ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_seconds=5.0)


async def test_health_follows_start_and_drain_and_inflight_rpcs_finish(config: ServeConfig) -> None:
    service = SlowService(delay=0.3)
    service.may_start.clear()
    running = Running(service, config)
    address = await running.address()
    assert running.lines[0].startswith("listening on 127.0.0.1:") and running.lines[1].startswith(
        "metrics on 127.0.0.1:"
    )
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "anesbench.v1.Grader"):
            assert (await health.Check(health_pb2.HealthCheckRequest(service=name))).status == NOT_SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == NOT_SERVING
        service.may_start.set()
        assert (await watch.read()).status == SERVING

        slow = asyncio.ensure_future(grader_pb2_grpc.GraderStub(channel).Grade(grader_pb2.GradeRequest(id="slow")))
        await asyncio.sleep(0.1)  # the slow call is in flight
        running.stop.set()
        assert (await watch.read()).status == NOT_SERVING
        watch.cancel()
        assert (await slow).id == "slow"  # within the grace period
        assert await asyncio.wait_for(running.task, 5) == 0
    assert service.calls == ["start", "drain", "shutdown"]


async def test_grace_is_bounded(config: ServeConfig) -> None:
    service = SlowService(delay=30)
    running = Running(service, ServeConfig(host="127.0.0.1", port=0, grace_seconds=0.2))
    async with grpc.aio.insecure_channel(await running.address()) as channel:
        stuck = asyncio.ensure_future(grader_pb2_grpc.GraderStub(channel).Grade(grader_pb2.GradeRequest()))
        await asyncio.sleep(0.1)
        running.stop.set()
        assert await asyncio.wait_for(running.task, 3) == 0
        with pytest.raises(grpc.aio.AioRpcError):
            await stuck


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
