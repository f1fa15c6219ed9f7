"""``anesbench prune`` and ``anesbench backup``: keep the store small, and copy it while it serves."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import click

from anesbench.cli.options import store_options


@click.command()
@click.option("--keep-last", type=click.IntRange(min=1), default=None, metavar="N",
              help="Keep the N newest finished runs of each series (model, dataset, configuration); prune older ones.")
@click.option("--older-than", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Prune the finished runs that finished more than DAYS ago.")
@click.option("--keep-aggregates", is_flag=True,
              help="Keep each pruned run and its counts (leaderboard, runs) and drop its results only; "
              "without it, pruned runs are deleted.")
@store_options
def prune(keep_last: int | None, older_than: float | None, keep_aggregates: bool, db: str,
          dispatcher: str | None) -> None:
    """Drop old runs' replies (or the runs), never a running one or the leaderboard's, then shrink the file."""
    if (keep_last is None) == (older_than is None):
        raise click.UsageError("give exactly one of --keep-last or --older-than")
    if dispatcher:
        from anesbench.cli.dispatcher_client import RemoteSource

        outcome = RemoteSource(dispatcher).prune(keep_last, older_than, keep_aggregates)
    else:
        from anesbench.cli.sources import existing
        from anesbench.store import Store

        with closing(Store(existing(db))) as store:
            outcome = store.prune(keep_last, older_than, keep_aggregates)
    what = "results dropped, counts kept" if outcome.kept_aggregates else "deleted"
    click.echo(f"pruned {len(outcome.run_ids)} run(s) ({what}): {', '.join(outcome.run_ids) or '-'}; "
               f"store {outcome.bytes_before / 1e6:.1f} MB -> {outcome.bytes_after / 1e6:.1f} MB")


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="DuckDB file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@store_options
def backup(out: str, force: bool, db: str, dispatcher: str | None) -> None:
    """A consistent copy of the store, taken while the dispatcher serves; restore: copy it over --db, stopped."""
    from anesbench.export import atomic_output

    with atomic_output(out, force) as temporary:
        if dispatcher:
            from anesbench.cli.dispatcher_client import RemoteSource

            RemoteSource(dispatcher).backup(temporary)
        else:
            from anesbench.cli.sources import existing
            from anesbench.store import Store

            with closing(Store(existing(db))) as store:
                store.backup_to(str(temporary))
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)", err=True)
