"""``anesbench compare``, ``export`` and ``report``: reading results back out, embedded or via a dispatcher."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path

import click

from anesbench.cli.options import field_map, field_options, store_options


@click.command()
@click.argument("run_a")
@click.argument("run_b", required=False)
@store_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
def compare(run_a: str, run_b: str | None, db: str, dispatcher: str | None, fmt: str) -> None:
    """Two runs paired on the same questions (accuracy difference, bootstrap CI, McNemar); one run: en↔zh agreement.

    A run with --elicit all also shows, per language and level, how often the rules' letter is the model's
    elicited one, and lists where they differ."""
    from anesbench.analysis import compare_runs, language_agreement, rules_agreement
    from anesbench.analysis.compare import (
        render_agreement,
        render_comparison,
        render_rules_agreement,
        rules_agreement_json,
    )
    from anesbench.cli.sources import open_source
    from anesbench.errors import InvalidInput

    if run_b is not None and run_a == run_b:
        raise InvalidInput(f"compare: RUN_A and RUN_B are the same run {run_a!r}; give two different runs")
    with closing(open_source(db, dispatcher)) as source:
        runs = source.runs([run_a] if run_b is None else [run_a, run_b])
        found = [source.outcomes(run.id) for run in runs]
    # A run with --elicit all asked after every reply: how far its rules agree with the model.
    rules = [rules_agreement(run.id, got) for run, got in zip(runs, found, strict=True) if run.elicit == "all"]
    if run_b is not None:
        texts = [render_comparison(compare_runs(runs[0], found[0], runs[1], found[1]), fmt)]
    elif rules and not {"en", "zh"} <= set(runs[0].languages):
        texts = []  # one language: the rules' agreement is all there is to show
    else:
        texts = [render_agreement(runs[0].id, language_agreement(runs[0], found[0]), fmt)]
    if fmt == "json":
        main_json = json.loads(texts[0]) if texts else {"run_id": runs[0].id}
        if rules:
            main_json["rules_vs_elicited"] = [rules_agreement_json(agreement) for agreement in rules]
        click.echo(json.dumps(main_json, ensure_ascii=False, indent=2))
        return
    click.echo("\n\n".join([*texts, *(render_rules_agreement(agreement, fmt) for agreement in rules)]))


@click.command()
@click.option("--run", "run_id", required=True, help="The run to export.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True)
@click.option("--out", default=None, help="File to write (default: standard output; Parquet needs --out).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@store_options
def export(run_id: str, fmt: str, out: str | None, force: bool, db: str, dispatcher: str | None) -> None:
    """Every result of a run, one row each: item, language, level, sample, gold, predicted, method, outcome,
    correct, response, reasoning, finish reason, tokens, latency, attempts, error; whether the letter was elicited,
    the rules' own letter and method, and the follow-up turn (state, parameters, reply, error, attempts, latency,
    tokens)."""
    from anesbench.cli.sources import EmbeddedSource, open_source
    from anesbench.errors import InvalidInput
    from anesbench.store.export_sql import RowWriter, atomic_output, check_target

    if out is None and fmt == "parquet":
        raise InvalidInput("Parquet is binary; give a file with --out", field="out")
    if out is not None:
        check_target(out, force)  # before anything is read
    with closing(open_source(db, dispatcher)) as source:
        source.runs([run_id])
        if out is None:
            writer = RowWriter(fmt, sys.stdout.buffer)
            source.scan(run_id, writer.write)
            writer.close()
            return
        with atomic_output(out, force) as temporary:
            if isinstance(source, EmbeddedSource):
                source.store.export_to(run_id, fmt, str(temporary))
            else:
                with Path(temporary).open("wb") as handle:
                    writer = RowWriter(fmt, handle)
                    source.scan(run_id, writer.write)
                    writer.close()
    click.echo(f"wrote {out}", err=True)


@click.command()
@click.option("--run", "run_ids", multiple=True, help="Runs to report on (repeatable; default: the leaderboard's).")
@click.option("--out", required=True, help="HTML file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(dir_okay=False),
              help="Dataset file(s) the runs used, to show question stems and options (matched by sha256).")
@field_options
@store_options
def report(run_ids: tuple[str, ...], out: str, force: bool, datasets: tuple[str, ...], fields: str | None,
           fields_file: str | None, db: str, dispatcher: str | None) -> None:
    """One self-contained HTML page: paper table, accuracy with intervals, comparison, agreement, wrong answers."""
    from anesbench.cli.sources import open_source
    from anesbench.report import build_report
    from anesbench.store.export_sql import atomic_output, check_target

    check_target(out, force)
    mapping = field_map(fields, fields_file)
    with closing(open_source(db, dispatcher)) as source:
        html = build_report(source, list(run_ids), list(datasets), mapping)
    with atomic_output(out, force) as temporary:
        temporary.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)
