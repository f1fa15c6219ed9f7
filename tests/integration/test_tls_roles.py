"""The dispatcher and grader over TLS with a private CA made here, and the dispatcher's two token roles:
runner (everything) and reader (reads only). Health stays open; everything else needs a valid token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc, grader_pb2, grader_pb2_grpc
from tests.conftest import SAMPLE
from tests.pki import PrivateCA
from tests.procs import CLI, Proc, run_cli, start, start_standin

RUNNER, READER, GRADER = "runner-token-for-tests", "reader-token-for-tests", "grader-token-for-tests"
NO_TOKEN = {"ANESBENCH_DISPATCHER_TOKEN": "", "ANESBENCH_DISPATCHER_TOKEN_FILE": "", "ANESBENCH_DISPATCHER_CA": ""}


@dataclass
class Stack:
    ca: PrivateCA
    dispatcher: Proc
    grader: Proc
    standin: Proc
    tokens: dict[str, Path]
    db: Path

    def cli(self, *args: str, token: str | None = "runner", tls: bool = True) -> tuple[int, str, str]:
        extra = (["--dispatcher-ca", str(self.ca.cert)] if tls else []) + (
            ["--dispatcher-token-file", str(self.tokens[token])] if token else [])
        done = run_cli(*args, "--dispatcher", self.dispatcher.address, *extra, env=NO_TOKEN)
        return done.returncode, done.stdout, done.stderr

    def channel(self, address: str) -> grpc.Channel:
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(self.ca.cert.read_bytes()))


def _files(folder: Path, **tokens: str) -> dict[str, Path]:
    paths = {}
    for name, token in tokens.items():
        paths[name] = folder / f"{name}.token"
        paths[name].write_text(token + "\n")
    return paths


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("tls")
    ca = PrivateCA(folder)
    server = ca.issue("server")
    tokens = _files(folder, runner=RUNNER, reader=READER, grader=GRADER)
    tls = ["--tls-cert", str(server.cert), "--tls-key", str(server.key)]
    standin = start_standin("--answer-key", str(SAMPLE))
    grader = start([*CLI, "serve", "grader", "--host", "127.0.0.1", "--port", "0", *tls, "--health-port", "0",
                    "--auth-token-file", str(tokens["grader"])])
    dispatcher = start([*CLI, "serve", "dispatcher", "--host", "127.0.0.1", "--port", "0", "--grader", grader.address,
                        "--db", str(folder / "d.duckdb"), *tls, "--auth-token-file", str(tokens["runner"]),
                        "--read-token-file", str(tokens["reader"]), "--grader-ca", str(ca.cert),
                        "--grader-token-file", str(tokens["grader"])], env=NO_TOKEN)
    yield Stack(ca, dispatcher, grader, standin, tokens, folder / "d.duckdb")
    for proc in (dispatcher, grader, standin):
        proc.stop()


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()  # type: ignore[operator]
    return refused.value.code()


def test_runner_token_runs_over_tls_through_a_tls_grader(stack: Stack) -> None:
    code, out, err = stack.cli("run", "--endpoint", stack.standin.address, "--model", "standin",
                               "--dataset", str(SAMPLE), "--run-id", "tls-runner")
    assert code == 0 and "status=completed" in out, err


def test_reader_token_reads_but_cannot_start_runs(stack: Stack) -> None:
    code, out, err = stack.cli("runs", "--format", "json", token="reader")
    assert code == 0 and isinstance(json.loads(out), list), err
    code, _, err = stack.cli("run", "--endpoint", stack.standin.address, "--model", "standin",
                             "--dataset", str(SAMPLE), "--run-id", "tls-reader", token="reader")
    assert code == 2 and "reader token may not call StartRun" in err, err
    with stack.channel(stack.dispatcher.address) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        reader = (("authorization", f"Bearer {READER}"),)
        assert stub.ListRuns(pb.ListRunsRequest(), timeout=10, metadata=reader) is not None
        denied = _code(lambda: stub.CancelRun(pb.CancelRunRequest(run_id="x"), timeout=10, metadata=reader))
        assert denied == grpc.StatusCode.PERMISSION_DENIED


def test_no_token_or_a_wrong_one_is_unauthenticated_and_health_is_open(stack: Stack) -> None:
    with stack.channel(stack.dispatcher.address) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        assert _code(lambda: stub.ListRuns(pb.ListRunsRequest(), timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
        wrong = (("authorization", "Bearer guess"),)
        assert _code(lambda: stub.GetRun(pb.GetRunRequest(run_id="x"), timeout=10, metadata=wrong)) \
            == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)
    code, _, err = stack.cli("runs", token=None)
    assert code == 2 and "requires a bearer token" in err, err


def test_probes_get_plain_text_health_and_nothing_else(stack: Stack) -> None:
    address = stack.grader.wait_line("health on ")
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10,
                                                           wait_for_ready=True)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        grade = grader_pb2_grpc.GraderStub(channel).Grade
        request = grader_pb2.GradeRequest(id="1", choices={"A": "a", "B": "b"}, response="The answer is B.")
        assert _code(lambda: grade(request, timeout=10)) == grpc.StatusCode.UNIMPLEMENTED


def test_reflection_needs_a_token(stack: Stack) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with stack.channel(stack.dispatcher.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        assert _code(lambda: list(stub.ServerReflectionInfo(iter([request]), timeout=10))) \
            == grpc.StatusCode.UNAUTHENTICATED
        listed = list(stub.ServerReflectionInfo(iter([request]), timeout=10,
                                                metadata=(("authorization", f"Bearer {READER}"),)))
        names = {service.name for service in listed[0].list_services_response.service}
        assert "anesbench.v1.Dispatcher" in names


def test_grader_requires_the_dispatchers_token(stack: Stack) -> None:
    request = grader_pb2.GradeRequest(id="1", choices={"A": "a", "B": "b"}, response="The answer is B.")
    with stack.channel(stack.grader.address) as channel:
        stub = grader_pb2_grpc.GraderStub(channel)
        assert _code(lambda: stub.Grade(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
        graded = stub.Grade(request, timeout=10, metadata=(("authorization", f"Bearer {GRADER}"),))
        assert graded.pred == "B"


def test_a_url_with_credentials_is_refused_and_never_stored(stack: Stack) -> None:
    secret = "planted-secret-9f2c"
    host = stack.standin.address.split("//", 1)[1]
    request = pb.StartRunRequest(run_id="creds", dataset_name="anesbench",
                                 spec=pb.RunSpec(model="standin", endpoint=f"http://user:{secret}@{host}"))
    with stack.channel(stack.dispatcher.address) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        runner = (("authorization", f"Bearer {RUNNER}"),)
        assert _code(lambda: stub.StartRun(request, timeout=10, metadata=runner)) == grpc.StatusCode.INVALID_ARGUMENT
    code, _, err = stack.cli("run", "--endpoint", f"http://user:{secret}@{host}", "--model", "standin",
                             "--dataset", str(SAMPLE), "--run-id", "creds-cli")
    assert code == 2 and "holds user:password" in err, err
    for path in stack.db.parent.glob(stack.db.name + "*"):  # the file and its write-ahead log
        assert secret.encode() not in path.read_bytes(), path


def test_plain_text_client_fails_fast_naming_tls(stack: Stack) -> None:
    # Only the refused-session path says "TLS"; the give-up-after-5-s path says "cannot reach".
    code, _, err = stack.cli("runs", tls=False)
    assert code == 2 and "requires TLS" in err and "--dispatcher-ca" in err, err


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    ca = PrivateCA(tmp_path)
    server, client = ca.issue("server"), ca.issue("client", server=False)
    grader = start([*CLI, "serve", "grader", "--host", "127.0.0.1", "--port", "0", "--tls-cert", str(server.cert),
                    "--tls-key", str(server.key), "--tls-client-ca", str(ca.cert)])
    check = health_pb2.HealthCheckRequest()
    try:
        anonymous = grpc.ssl_channel_credentials(ca.cert.read_bytes())
        with grpc.secure_channel(grader.address, anonymous) as channel:
            refused = _code(lambda: health_pb2_grpc.HealthStub(channel).Check(check, timeout=10))
        assert refused == grpc.StatusCode.UNAVAILABLE
        named = grpc.ssl_channel_credentials(ca.cert.read_bytes(), client.key.read_bytes(), client.cert.read_bytes())
        with grpc.secure_channel(grader.address, named) as channel:
            assert health_pb2_grpc.HealthStub(channel).Check(check, timeout=10, wait_for_ready=True) is not None
    finally:
        grader.stop()
