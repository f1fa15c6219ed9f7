"""``anesbench prune`` and ``anesbench backup``: keep the store small, and copy it while it serves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

from anesbench.cli.options import DEFAULT_DB, dispatcher_credentials, host_port

if TYPE_CHECKING:
    from anesbench.store.retention import PruneOutcome

BACKUP_TIMEOUT = 3600.0  # seconds for a whole backup stream (a large store is GBs)


@click.command()
@click.option("--keep-last", type=click.IntRange(min=1), default=None, metavar="N",
              help="Keep the N newest finished runs of each series (model, dataset, configuration); prune older ones.")
@click.option("--older-than", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Prune the finished runs that finished more than DAYS ago.")
@click.option("--keep-aggregates", is_flag=True,
              help="Keep each pruned run and its counts (leaderboard, runs) and drop its results only; "
              "without it, pruned runs are deleted.")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--dispatcher", default=None, callback=host_port)
@dispatcher_credentials
def prune(keep_last: int | None, older_than: float | None, keep_aggregates: bool, db: str,
          dispatcher: str | None) -> None:
    """Drop old runs' replies (or the runs), never a running one or the leaderboard's, then shrink the file."""
    if (keep_last is None) == (older_than is None):
        raise click.UsageError("give exactly one of --keep-last or --older-than")
    if dispatcher:
        outcome = asyncio.run(_remote_prune(dispatcher, keep_last, older_than, keep_aggregates))
    else:
        from anesbench.store import Store

        store = Store(existing(db))
        try:
            outcome = store.prune(keep_last, older_than, keep_aggregates)
        finally:
            store.close()
    what = "results dropped, counts kept" if outcome.kept_aggregates else "deleted"
    click.echo(f"pruned {len(outcome.run_ids)} run(s) ({what}): {', '.join(outcome.run_ids) or '-'}; "
               f"store {outcome.bytes_before / 1e6:.1f} MB -> {outcome.bytes_after / 1e6:.1f} MB")


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="DuckDB file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--dispatcher", default=None, callback=host_port)
@dispatcher_credentials
def backup(out: str, force: bool, db: str, dispatcher: str | None) -> None:
    """A consistent copy of the store, taken while the dispatcher serves; restore: copy it over --db, stopped."""
    from anesbench.export import atomic_output

    with atomic_output(out, force) as temporary:
        if dispatcher:
            asyncio.run(_remote_backup(dispatcher, temporary))
        else:
            from anesbench.store import Store

            store = Store(existing(db))
            try:
                store.backup_to(str(temporary))
            finally:
                store.close()
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)", err=True)


def existing(db: str) -> str:
    from anesbench.errors import InvalidInput

    if not Path(db).is_file():
        raise InvalidInput(f"no such file: {db}", field="db")
    return db


async def _remote_prune(target: str, keep_last: int | None, older_than: float | None,
                        keep_aggregates: bool) -> PruneOutcome:
    from anesbench.cli.dispatcher_client import DispatcherClient
    from anesbench.store.retention import PruneOutcome
    from anesbench.v1 import dispatcher_pb2 as pb

    request = pb.PruneRunsRequest(keep_aggregates=keep_aggregates)
    if keep_last is not None:
        request.keep_last = keep_last
    else:
        request.older_than_days = older_than or 0.0
    async with DispatcherClient(target) as client:
        # Pruning copies the whole store into a fresh file: minutes for a large one.
        response = await client.call(client.stub.PruneRuns, request, timeout=BACKUP_TIMEOUT)
    return PruneOutcome(list(response.run_ids), response.kept_aggregates, response.bytes_before, response.bytes_after)


async def _remote_backup(target: str, path: Path) -> None:
    import grpc

    from anesbench.cli.dispatcher_client import DispatcherClient
    from anesbench.v1 import dispatcher_pb2 as pb

    async with DispatcherClient(target) as client:
        with path.open("wb") as handle:
            try:
                async for chunk in client.stub.BackupStore(pb.BackupStoreRequest(), timeout=BACKUP_TIMEOUT,
                                                           metadata=client.metadata):
                    handle.write(chunk.data)
            except grpc.aio.AioRpcError as error:
                raise client.error_for(error) from None
