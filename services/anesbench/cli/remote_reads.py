"""Reads, cancels and regrades through a dispatcher (``--dispatcher``): it owns the DuckDB file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from anesbench.cli.dispatcher_client import DispatcherClient
from anesbench.store import RunRecord
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.store.report_reads import RunFigures, TrendPoint
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.wire.convert import export_row_from_pb, leaderboard_from_pb, report_figures_from_pb, run_from_pb


async def _leaderboard(target: str, run_ids: list[str], include_incomplete: bool) -> list[LeaderboardRow]:
    async with DispatcherClient(target) as client:
        response = await client.call(client.stub.GetLeaderboard, pb.GetLeaderboardRequest(
            run_ids=run_ids, include_incomplete=include_incomplete))
    return leaderboard_from_pb(response)


async def remote_export(target: str, run_id: str, visit: Callable[[dict[str, Any]], None]) -> None:
    """Stream a run's results (ExportResults) and hand each row to ``visit`` as it arrives."""
    async with DispatcherClient(target) as client:
        try:
            async for chunk in client.stub.ExportResults(pb.ExportResultsRequest(run_id=run_id)):
                for message in chunk.results:
                    visit(export_row_from_pb(message))
        except grpc.aio.AioRpcError as error:
            raise client.error_for(error) from None


async def _report_figures(target: str, run_ids: list[str],
                          wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
    async with DispatcherClient(target) as client:
        return report_figures_from_pb(await client.call(client.stub.GetReportFigures, pb.GetReportFiguresRequest(
            run_ids=run_ids, wrong_shown=wrong_shown)))


async def _runs(target: str) -> list[RunRecord]:
    async with DispatcherClient(target) as client:
        response = await client.call(client.stub.ListRuns, pb.ListRunsRequest())
    return [run_from_pb(run) for run in response.runs]


async def _run_rpc(target: str, rpc: str, request: Any) -> RunRecord:
    """Call an RPC that answers with a Run."""
    async with DispatcherClient(target) as client:
        return run_from_pb(await client.call(getattr(client.stub, rpc), request))


def remote_leaderboard(target: str, run_ids: list[str], include_incomplete: bool = False) -> list[LeaderboardRow]:
    return asyncio.run(_leaderboard(target, run_ids, include_incomplete))


def remote_report_figures(target: str, run_ids: list[str],
                          wrong_shown: int) -> tuple[list[RunFigures], list[TrendPoint]]:
    return asyncio.run(_report_figures(target, run_ids, wrong_shown))


def remote_runs(target: str) -> list[RunRecord]:
    return asyncio.run(_runs(target))


def remote_cancel(target: str, run_id: str) -> RunRecord:
    return asyncio.run(_run_rpc(target, "CancelRun", pb.CancelRunRequest(run_id=run_id)))


def remote_regrade(target: str, run_id: str, new_id: str | None) -> RunRecord:
    return asyncio.run(_run_rpc(target, "RegradeRun", pb.RegradeRunRequest(run_id=run_id, new_run_id=new_id or "")))
