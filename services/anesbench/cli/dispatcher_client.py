"""The commands' calls to a dispatcher (:class:`RemoteSource`, over :class:`DispatcherClient`, a small gRPC client).

A dispatcher that cannot be reached fails within :data:`CONNECT_TIMEOUT` seconds with a hint about
``--dispatcher``; one that accepts the connection but not the session (plain text at a TLS server, the
wrong CA) fails at once, saying so. Status codes become the exceptions the server raised
(``serving.status.error_from_rpc``); only :class:`~anesbench.errors.Unavailable` is worth trying again, which
:func:`reconnecting` does with exponential backoff; a server bug (INTERNAL) is raised at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from anesbench.analysis.compare import Outcome, Visit, outcome_of
from anesbench.errors import DispatcherUnavailable, InvalidInput, Unavailable
from anesbench.serving import CLIENT_OPTIONS
from anesbench.serving.security import client_tls, open_channel, read_token, token_metadata
from anesbench.serving.status import error_from_rpc
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.records import PruneOutcome, RunFigures, TrendPoint
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV
from anesbench.wire.convert import export_row_from_pb, leaderboard_from_pb, report_figures_from_pb, run_from_pb

T = TypeVar("T")
CONNECT_TIMEOUT = 5.0  # seconds to reach the dispatcher before saying the address is wrong
CALL_TIMEOUT = 60.0  # seconds for one unary call once connected
RECONNECT_FOR = 600.0  # seconds to keep re-attaching while a dispatcher restarts
LONG_CALL_TIMEOUT = 3600.0  # seconds for a backup or a prune: they copy the whole store (GBs)


def client_metadata(token_file: str | None = None) -> tuple[tuple[str, str], ...]:
    """The call metadata with the token of ``token_file``, else $ANESBENCH_DISPATCHER_TOKEN, else the file in
    $ANESBENCH_DISPATCHER_TOKEN_FILE (none without one)."""
    if token_file:
        return token_metadata(read_token(token_file, "dispatcher_token_file"))
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return token_metadata(os.environ.get(TOKEN_ENV, "").strip() or (read_token(path, TOKEN_FILE_ENV) if path else None))


def reconnecting(for_seconds: float = RECONNECT_FOR, *, initial: float = 0.5, maximum: float = 10.0) -> AsyncRetrying:
    """Retry while the dispatcher is unavailable (restarting, draining), with backoff and jitter."""
    return AsyncRetrying(
        retry=retry_if_exception_type(Unavailable),
        stop=stop_after_delay(for_seconds),
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial),
        reraise=True,
    )


async def _listening(target: str) -> bool:
    """Whether something accepts TCP connections at ``target`` (HOST:PORT or [V6]:PORT)."""
    host, _, port = target.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), 1.0)
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    return True


class DispatcherClient:
    def __init__(self, target: str) -> None:
        self.target = target
        ctx = click.get_current_context(silent=True)  # --dispatcher-ca and --dispatcher-token-file (cli/main.py)
        given = ctx.meta if ctx is not None else {}
        ca = given.get("dispatcher_ca") or os.environ.get(CA_ENV, "").strip() or None
        self.tls = client_tls(ca, prefix="dispatcher")  # None (no CA given): plain text
        self._channel = open_channel(target, CLIENT_OPTIONS, self.tls)
        self.metadata = client_metadata(given.get("dispatcher_token_file"))  # the bearer token, if any
        self.stub = dispatcher_pb2_grpc.DispatcherStub(self._channel)

    async def __aenter__(self) -> DispatcherClient:
        await self.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    async def ready(self) -> None:
        """Wait until the channel is connected; DispatcherUnavailable with a hint after :data:`CONNECT_TIMEOUT`."""
        try:
            await asyncio.wait_for(self._connected(), CONNECT_TIMEOUT)
        except TimeoutError:
            raise DispatcherUnavailable(
                f"cannot reach a dispatcher at {self.target} within {CONNECT_TIMEOUT:g} s; check "
                "--dispatcher HOST:PORT (is `anesbench serve dispatcher` listening there?)"
            ) from None

    async def _connected(self) -> None:
        while (state := self._channel.get_state(try_to_connect=True)) is not grpc.ChannelConnectivity.READY:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE and await _listening(self.target):
                raise self._refused_session()
            await self._channel.wait_for_state_change(state)

    def _refused_session(self) -> InvalidInput:
        return InvalidInput(
            f"{self.target} accepts connections but not plain-text gRPC: it probably requires TLS; pass "
            "{dispatcher_ca} (or set $" + CA_ENV + ") with the CA that signed its certificate" if self.tls is None else
            f"the TLS handshake with {self.target} failed: check that {{dispatcher_ca}} names the CA that signed "
            "its certificate, for this host name, and that it serves TLS at all", mentions=("dispatcher_ca",))

    async def call(self, method: Callable[..., Awaitable[T]], request: object, *, timeout: float = CALL_TIMEOUT) -> T:
        try:
            return await method(request, timeout=timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error, unreachable=f"dispatcher {self.target}") from None

    async def stream(self, method: Callable[..., Any], request: object, *,
                     timeout: float | None = None) -> AsyncIterator[Any]:
        """The messages of a server-streaming RPC, until it ends or breaks (the server's exception)."""
        try:
            async for message in method(request, timeout=timeout, metadata=self.metadata):
                yield message
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error, unreachable=f"dispatcher {self.target}") from None


class RemoteSource:
    """A :class:`~anesbench.analysis.compare.ResultSource` at a dispatcher (which owns the DuckDB file) that also
    cancels, regrades, prunes and backs up; each call a short connection."""

    def __init__(self, target: str) -> None:
        self.target = target

    def _connected(self, work: Callable[[DispatcherClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with DispatcherClient(self.target) as client:
                return await work(client)

        return asyncio.run(main())

    def _call(self, rpc: str, request: Any, timeout: float = CALL_TIMEOUT) -> Any:
        return self._connected(lambda client: client.call(getattr(client.stub, rpc), request, timeout=timeout))

    def _stream(self, rpc: str, request: Any, visit: Callable[[Any], object], timeout: float | None = None) -> None:
        async def read(client: DispatcherClient) -> None:
            async for message in client.stream(getattr(client.stub, rpc), request, timeout=timeout):
                visit(message)

        self._connected(read)

    def runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        async def get(client: DispatcherClient) -> list[RunRecord]:
            return [run_from_pb(await client.call(client.stub.GetRun, pb.GetRunRequest(run_id=run_id)))
                    for run_id in run_ids]

        return self._connected(get)

    def list_runs(self) -> list[RunRecord]:
        return [run_from_pb(run) for run in self._call("ListRuns", pb.ListRunsRequest()).runs]

    def leaderboard(self, run_ids: Sequence[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
        return leaderboard_from_pb(self._call("GetLeaderboard", pb.GetLeaderboardRequest(
            run_ids=run_ids, include_incomplete=include_incomplete)))

    def scan(self, run_id: str, visit: Visit) -> None:
        """Hand each of the run's results to ``visit`` as it arrives (ExportResults)."""
        def rows(chunk: pb.ExportResultsChunk) -> None:
            for message in chunk.results:
                visit(export_row_from_pb(message))

        self._stream("ExportResults", pb.ExportResultsRequest(run_id=run_id), rows)

    def outcomes(self, run_id: str) -> list[Outcome]:
        found: list[Outcome] = []
        self.scan(run_id, lambda row: found.append(outcome_of(row)))
        return found

    def report_figures(self, run_ids: Sequence[str], wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
        return report_figures_from_pb(self._call("GetReportFigures", pb.GetReportFiguresRequest(
            run_ids=run_ids, wrong_shown=wrong_shown)))

    def cancel(self, run_id: str) -> RunRecord:
        return run_from_pb(self._call("CancelRun", pb.CancelRunRequest(run_id=run_id)))

    def regrade(self, run_id: str, new_id: str | None) -> RunRecord:
        return run_from_pb(self._call("RegradeRun", pb.RegradeRunRequest(run_id=run_id, new_run_id=new_id or "")))

    def prune(self, keep_last: int | None, older_than: float | None, keep_aggregates: bool) -> PruneOutcome:
        request = pb.PruneRunsRequest(keep_aggregates=keep_aggregates, keep_last=keep_last, older_than_days=older_than)
        response = self._call("PruneRuns", request, LONG_CALL_TIMEOUT)
        return PruneOutcome(list(response.run_ids), response.kept_aggregates, response.bytes_before, response.bytes_after)

    def backup_to(self, out: str) -> None:
        with Path(out).open("wb") as handle:
            self._stream("BackupStore", pb.BackupStoreRequest(), lambda chunk: handle.write(chunk.data), LONG_CALL_TIMEOUT)

    def close(self) -> None:
        pass
