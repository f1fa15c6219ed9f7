"""One error model: every domain exception in anesbench.errors, declared once, mapped at each edge both ways."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click
import grpc
import pytest

import anesbench
from anesbench import errors
from anesbench.cli.dispatcher_client import DispatcherClient
from anesbench.cli.exit_codes import exit_code_for, message_for
from anesbench.cli.run_modes import _follow
from anesbench.dispatcher.runs import SERVE_OPTIONS, serve_option
from anesbench.engine.config import RunConfig
from anesbench.serving.status import error_from_rpc, rpc, status_for
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.convert import request_field, spec_to_pb
from tests.conftest import ROOT, SAMPLE


def _all_error_classes() -> list[type[errors.AnesbenchError]]:
    found: list[type[errors.AnesbenchError]] = []
    pending = [errors.AnesbenchError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_domain_exception_is_defined_in_errors_py() -> None:
    skip = ("anesbench.v1", "anesbench.cli.main")  # generated code; main registers commands on import
    for module in pkgutil.walk_packages(anesbench.__path__, "anesbench."):
        if not module.name.startswith(skip) and module.name != "anesbench.__main__":
            importlib.import_module(module.name)
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _all_error_classes()
                     if cls.__module__ != "anesbench.errors" and not cls.__module__.startswith(("tests", "anesbench_testkit")))
    assert outside == []
    # and nothing in the package defines its own Exception subclass beside them
    for module in pkgutil.walk_packages(anesbench.__path__, "anesbench."):
        if module.name.startswith(skip) or module.name in ("anesbench.errors", "anesbench.__main__"):
            continue
        mod = importlib.import_module(module.name)
        own = [name for name, obj in vars(mod).items() if inspect.isclass(obj) and issubclass(obj, BaseException)
               and obj.__module__ == mod.__name__]
        assert own == [], module.name


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_each_exception_declares_an_exit_code_and_a_real_grpc_status(cls: type[errors.AnesbenchError]) -> None:
    assert cls.exit_code in (1, 2)
    assert grpc.StatusCode[cls.grpc_status].name == cls.grpc_status


@pytest.mark.parametrize(
    ("error", "exit_code", "status"),
    [
        (errors.InvalidInput("x"), 2, grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ConfigConflict("x"), 2, grpc.StatusCode.FAILED_PRECONDITION),
        (errors.NotFound("x"), 2, grpc.StatusCode.NOT_FOUND),
        (errors.PermissionDenied("x"), 2, grpc.StatusCode.PERMISSION_DENIED),
        (errors.Draining("x"), 1, grpc.StatusCode.UNAVAILABLE),
        (errors.StoreBusy("x"), 1, grpc.StatusCode.UNAVAILABLE),
        (errors.FatalInferenceError("x"), 1, grpc.StatusCode.UNAVAILABLE),
        (errors.RunFailed("x"), 1, grpc.StatusCode.ABORTED),
    ],
)
def test_cli_and_server_read_the_same_declaration(error: errors.AnesbenchError, exit_code: int,
                                                  status: grpc.StatusCode) -> None:
    assert exit_code_for(error) == exit_code
    assert status_for(error)[0] == status


def test_the_field_is_data_and_each_edge_names_it() -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        RunConfig(model="m", endpoints=("http://127.0.0.1:1/v1",), concurrency=0)
    error = caught.value
    assert (error.field, error.message) == ("concurrency", "must be from 1 to 4096, got 0")
    assert message_for(error) == "--concurrency: must be from 1 to 4096, got 0"
    assert status_for(error, request_field) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                "spec.concurrency: must be from 1 to 4096, got 0")
    timeout = errors.InvalidInput("too long", field="request_timeout")
    assert message_for(timeout) == "--request-timeout: too long"
    assert status_for(timeout, request_field)[1] == "spec.request_timeout_seconds: too long"
    assert status_for(errors.InvalidInput("bad", field="run_id"), request_field)[1] == "run_id: bad"


def _only_with_inference_service() -> errors.InvalidInput:
    """A real error that mentions another setting: a namespace without an InferenceService."""
    with pytest.raises(errors.InvalidInput) as caught:
        RunConfig(model="m", endpoints=("http://127.0.0.1:1/v1",), namespace="evals")
    return caught.value


def test_the_cli_names_the_field_and_the_settings_mentioned_as_its_options() -> None:
    error = _only_with_inference_service()
    assert (error.field, error.message, error.mentions) == ("namespace", "only with {inference_service}",
                                                            ("inference_service",))
    assert message_for(error) == "--namespace: only with --inference-service"


def test_grpc_names_the_field_and_the_settings_mentioned_as_the_request_spells_them() -> None:
    error = _only_with_inference_service()
    assert status_for(error, request_field) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                "spec.namespace: only with spec.inference_service")


def test_a_log_line_shows_the_settings_own_names() -> None:
    assert str(_only_with_inference_service()) == "namespace: only with inference_service"


def test_only_listed_mentions_are_replaced() -> None:
    error = errors.InvalidInput("needs {question} and {options}; see {prompt_template}", field="prompt_template",
                                mentions=("prompt_template",))
    assert message_for(error) == "--prompt-template: needs {question} and {options}; see --prompt-template"


def test_every_run_setting_names_a_field_of_the_request() -> None:
    spec = {field.name for field in pb.RunSpec.DESCRIPTOR.fields}
    request = {field.name for field in pb.StartRunRequest.DESCRIPTOR.fields}
    for name in (field.name for field in dataclasses.fields(RunConfig)):
        where, _, field = request_field(name).rpartition(".")
        assert field in (spec if where == "spec" else request), name


def test_the_dispatcher_names_exactly_its_own_options() -> None:
    from anesbench.cli.serve_cmd import dispatcher

    options = {param.opts[0].removeprefix("--").replace("-", "_") for param in dispatcher.params
               if isinstance(param, click.Option)}
    assert options == SERVE_OPTIONS
    assert (serve_option("datasets_dir"), serve_option("allow_endpoint"), serve_option("run_id")) == (
        "--datasets-dir", "--allow-endpoint", None)


def test_the_dispatcher_writes_its_own_options_into_its_errors() -> None:
    from anesbench.dispatcher.runs import check_model_run
    from anesbench.dispatcher.specs import named_dataset

    with pytest.raises(errors.NotFound) as no_dir:
        named_dataset(None, "anesbench", ("en",))
    with pytest.raises(errors.InvalidInput) as no_kube:
        check_model_run(None, RunConfig(model="m", endpoints=(), inference_service="m1"), ())
    assert status_for(no_dir.value, request_field)[1] == (
        "dataset_name: this dispatcher has no datasets_dir; upload the dataset with the run")  # not settled yet
    for error in (no_dir.value, no_kube.value):
        error.settle(serve_option)
    assert status_for(no_dir.value, request_field)[1] == (
        "dataset_name: this dispatcher has no --datasets-dir; upload the dataset with the run")
    assert message_for(no_kube.value) == ("--inference-service: m1: this dispatcher does not drive InferenceServices "
                                          "(start it with --kube-namespace)")


# --- both ways over a real server ------------------------------------------------------------------
RAISE: dict[str, Exception] = {
    "conflict": errors.ConfigConflict("a run with that id is active with a different configuration", field="run_id"),
    "range": errors.InvalidInput("must be from 1 to 4096, got 0", field="concurrency"),
    "gone": errors.NotFound("no run with id 'x'"),
    "draining": errors.Draining("the dispatcher is shutting down; retry shortly"),
    "bug": RuntimeError("secret path /etc/x"),
    "mention": errors.InvalidInput("at least one is needed (or {inference_service})", field="endpoints",
                                   mentions=("inference_service",)),
    "own-setting": errors.NotFound("this dispatcher has no {datasets_dir}; upload the dataset with the run",
                                   field="dataset_name", mentions=("datasets_dir",)),
}
# As the dispatcher's servicer names things: request fields as the request spells them, its settings as its options.
served = rpc(fields=request_field, settings=serve_option)


class FakeDispatcher(dispatcher_pb2_grpc.DispatcherServicer):
    """GetRun raises the error named by the run id; WatchRun fails with a server bug after one event."""

    def __init__(self) -> None:
        self.watch_calls = 0
        self.start_calls = 0

    @served
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        raise RAISE[request.run_id]

    @served
    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        self.start_calls += 1
        return pb.Run(id=request.run_id, status=pb.RUN_STATUS_RUNNING, total=10)

    @served
    async def WatchRun(self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext
                       ) -> AsyncIterator[pb.RunEvent]:
        self.watch_calls += 1
        yield pb.RunEvent(run=pb.Run(id=request.run_id, status=pb.RUN_STATUS_RUNNING, total=10, done=1))
        raise RuntimeError("a bug in the dispatcher")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeDispatcher, str]]:
    servicer = FakeDispatcher()
    server = grpc.aio.server()
    dispatcher_pb2_grpc.add_DispatcherServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.mark.parametrize(
    ("name", "kind", "field", "message"),
    [
        ("conflict", errors.ConfigConflict, "run_id", "a run with that id is active with a different configuration"),
        ("range", errors.InvalidInput, "concurrency", "must be from 1 to 4096, got 0"),
        ("gone", errors.NotFound, None, "no run with id 'x'"),
        ("draining", errors.Draining, None, "the dispatcher is shutting down; retry shortly"),
        ("bug", errors.ServerError, None, "internal error in the server; details are in its log"),
    ],
)
async def test_the_client_raises_the_class_the_server_raised(
    fake: tuple[FakeDispatcher, str], name: str, kind: type[errors.AnesbenchError], field: str | None, message: str
) -> None:
    async with DispatcherClient(fake[1]) as client:
        with pytest.raises(errors.AnesbenchError) as caught:
            await client.call(client.stub.GetRun, pb.GetRunRequest(run_id=name))
    assert type(caught.value) is kind
    assert (caught.value.field, caught.value.message) == (field, message)
    if field == "concurrency":  # the CLI names it as its own option again
        assert message_for(caught.value) == "--concurrency: must be from 1 to 4096, got 0"


@pytest.mark.parametrize(
    ("name", "details", "cli"),
    [
        ("mention", "spec.endpoint: at least one is needed (or spec.inference_service)",
         "--endpoint: at least one is needed (or --inference-service)"),
        # the dispatcher's own option is written in by the dispatcher: every client shows it as it is
        ("own-setting", "dataset_name: this dispatcher has no --datasets-dir; upload the dataset with the run",
         "--dataset: this dispatcher has no --datasets-dir; upload the dataset with the run"),
    ],
)
async def test_each_edge_names_the_same_error_in_its_own_terms(
    fake: tuple[FakeDispatcher, str], name: str, details: str, cli: str
) -> None:
    async with grpc.aio.insecure_channel(fake[1]) as channel:  # a plain gRPC client sees the status details
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await dispatcher_pb2_grpc.DispatcherStub(channel).GetRun(pb.GetRunRequest(run_id=name))
    assert raw.value.details() == details
    async with DispatcherClient(fake[1]) as client:  # the CLI rebuilds the error and names it as its options
        with pytest.raises(errors.AnesbenchError) as caught:
            await client.call(client.stub.GetRun, pb.GetRunRequest(run_id=name))
    assert message_for(caught.value) == cli


async def test_internal_error_is_not_retried(fake: tuple[FakeDispatcher, str]) -> None:
    servicer, target = fake
    config = RunConfig(model="m", endpoints=("http://127.0.0.1:1/v1",), run_id="r")
    request = pb.StartRunRequest(run_id="r", spec=spec_to_pb(config, None), dataset_name="d")
    with pytest.raises(errors.ServerError, match="internal error in the server"):
        await _follow(target, request, progress="off")
    assert (servicer.start_calls, servicer.watch_calls) == (1, 1)  # not re-attached as if the server were down


@pytest.mark.parametrize(("error", "give_up_after", "retried"), [
    (errors.DispatcherUnavailable("down"), 0.3, True),  # worth trying again: retried with backoff, then given up
    (errors.ServerError("bug"), 5.0, False),  # a bug in the server: the same call would fail again
])
async def test_reconnecting_retries_only_what_may_pass_later(
    error: errors.AnesbenchError, give_up_after: float, retried: bool
) -> None:
    from anesbench.cli.dispatcher_client import reconnecting

    calls = 0
    with pytest.raises(type(error)):
        async for attempt in reconnecting(give_up_after, initial=0.01, maximum=0.02):
            with attempt:
                calls += 1
                raise error
    assert calls >= 2 if retried else calls == 1


def test_transport_statuses_become_unavailable() -> None:
    class Failed(grpc.aio.AioRpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="connect failed")

    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        error = error_from_rpc(Failed(code), unreachable="dispatcher 127.0.0.1:1")
        assert isinstance(error, errors.DispatcherUnavailable) and "dispatcher 127.0.0.1:1" in str(error)
    assert type(error_from_rpc(Failed(grpc.StatusCode.INTERNAL), unreachable="d")) is errors.ServerError


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [
    ["runs"], ["cancel", "r1"], ["leaderboard"],
    ["run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--dataset", str(SAMPLE)],
])
def test_wrong_dispatcher_address_fails_fast_with_a_hint(command: list[str]) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    # The old client waited for its 60 s call deadline; 30 s is generous on a loaded machine and still less.
    result = subprocess.run([sys.executable, "-m", "anesbench.cli.main", *command, "--dispatcher", address],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: cannot reach a dispatcher at {address} within 5 s; check --dispatcher "
                                     "HOST:PORT (is `anesbench serve dispatcher` listening there?)")


def test_a_bad_key_or_token_file_is_named_by_the_setting_that_gave_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from anesbench.cli.dispatcher_client import client_metadata
    from anesbench.dispatcher.server import server_token
    from anesbench.inference.endpoint import load_endpoint_keys
    from anesbench.wire import TOKEN_ENV, TOKEN_FILE_ENV

    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.write_text("\n")
    with pytest.raises(errors.InvalidInput) as server:
        server_token(str(empty))
    assert message_for(server.value) == f"--auth-token-file: {empty} is empty"
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(missing))
    with pytest.raises(errors.InvalidInput) as client:
        client_metadata()
    assert message_for(client.value) == (f"$ANESBENCH_DISPATCHER_TOKEN_FILE: cannot read {missing}: "
                                         "No such file or directory")
    with pytest.raises(errors.InvalidInput) as shape:
        load_endpoint_keys(["http://x"])
    assert message_for(shape.value) == "--endpoint-key-file: expected URL_PREFIX=FILE, got 'http://x'"
    with pytest.raises(errors.InvalidInput) as no_key:
        load_endpoint_keys([f"http://x={empty}"])
    assert message_for(no_key.value) == f"--endpoint-key-file: http://x: {empty} is empty"


def test_dispatcher_credential_options_win_over_the_environment_and_leave_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from anesbench.cli.main import main
    from anesbench.wire import TOKEN_ENV

    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    before = dict(os.environ)
    missing = tmp_path / "missing"
    # The option's file is read (not the variable's token), before any connection is tried.
    assert main(["runs", "--dispatcher", "127.0.0.1:1", "--dispatcher-token-file", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: --dispatcher-token-file: cannot read {missing}: "
                                               "No such file or directory")
    assert main(["runs", "--dispatcher", "127.0.0.1:1", "--dispatcher-ca", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --dispatcher-ca: cannot read {missing}: No such file or directory"
    assert dict(os.environ) == before


def test_a_run_may_name_only_an_allowed_inference_service() -> None:
    from anesbench.dispatcher.runs import check_model_run
    from anesbench.engine.config import RunConfig
    from anesbench.errors import PermissionDenied

    class Pool:
        namespace = "bench"

    config = RunConfig(model="m", endpoints=(), inference_service="someone-elses")
    with pytest.raises(PermissionDenied) as refused:
        check_model_run(Pool(), config, ("anesbench-qwen3-8b", "anesbench-qwen3-14b"))  # type: ignore[arg-type]
    assert refused.value.field == "inference_service"
    assert "allowed: anesbench-qwen3-8b, anesbench-qwen3-14b" in refused.value.message
    allowed = dataclasses.replace(config, inference_service="anesbench-qwen3-8b")
    assert check_model_run(Pool(), allowed, ("anesbench-qwen3-8b",)).namespace == "bench"  # type: ignore[arg-type]


def test_an_inference_service_url_outside_its_namespace_is_refused() -> None:
    from anesbench.errors import PermissionDenied
    from anesbench.kube import check_status_url

    check_status_url("http://m-predictor.bench.svc.cluster.local/v1", "bench", ())
    for url in ("http://m-predictor.other.svc.cluster.local/v1", "https://attacker.example/v1",
                "http://169.254.169.254/v1"):
        with pytest.raises(PermissionDenied):
            check_status_url(url, "bench", ("http://m-predictor.bench.svc.cluster.local/v1",))
