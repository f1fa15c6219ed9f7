"""Commands on what the store holds: ``prune`` keeps it small, ``backup`` copies it while it serves, ``regrade``
grades a completed run's stored replies again by the current extractor, as a new run."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path

import click

from anesbench.cli.options import field_map, field_options, store_options


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
    from anesbench.store.export_sql import atomic_output

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


@click.command()
@click.argument("run")
@click.option("--run-id", "new_run_id", default=None, help="Id of the new run (default: generated).")
@click.option("--dataset", default=None, help="The run's dataset file (embedded: the store keeps no option texts; "
              "a dispatcher uses the one it ran).")
@field_options
@store_options
def regrade(run: str, new_run_id: str | None, dataset: str | None, fields: str | None, fields_file: str | None,
            db: str, dispatcher: str | None) -> None:
    """Grade RUN's stored replies again with the current extractor, into a new run; nothing is sent to the model."""
    from anesbench.cli.run_modes import summary_line

    if dispatcher:
        if dataset or fields or fields_file:
            raise click.UsageError("--dataset: with --dispatcher, the dispatcher regrades on the dataset it ran")
        from anesbench.cli.dispatcher_client import RemoteSource

        final = RemoteSource(dispatcher).regrade(run, new_run_id)
    elif dataset is None:
        raise click.UsageError("--dataset: required without --dispatcher (the store keeps no option texts)")
    else:
        from anesbench import event_loop
        from anesbench.cli.sources import existing
        from anesbench.dataset import load_dataset
        from anesbench.engine.regrade import regrade_run
        from anesbench.grader import LocalGrader
        from anesbench.store import RunRecord, Store
        from anesbench.store.async_store import AsyncStore

        mapping = field_map(fields, fields_file)
        store = AsyncStore(Store(existing(db)))

        async def embedded() -> RunRecord:
            try:
                languages = (await store.call(Store.get_run, run)).languages
                loaded = await asyncio.to_thread(load_dataset, dataset, languages, fields=mapping)
                return await regrade_run(store, LocalGrader(), loaded, run, new_run_id)
            finally:
                await store.close()

        final = event_loop.run(embedded())
    click.echo(summary_line(final))
