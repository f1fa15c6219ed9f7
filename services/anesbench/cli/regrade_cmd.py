"""``anesbench regrade``: a completed run's stored replies graded again by the current extractor, as a new run."""

from __future__ import annotations

import asyncio

import click

from anesbench.cli.options import field_map, field_options, store_options


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
