"""``anesbench``: the command line (docs/architecture.md, CLI contract). Heavy modules load inside commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from anesbench import __version__, defaults
from anesbench.cli import Command, option_group, serve_cmd
from anesbench.cli.exit_codes import exit_code_for, message_for
from anesbench.dataset.model import LANGUAGES, LETTERS
from anesbench.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, AnesbenchError, InvalidInput, RunFailed
from anesbench.wire import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV

if TYPE_CHECKING:
    from anesbench.cli.dispatcher_client import RemoteSource
    from anesbench.cli.sources import EmbeddedSource
    from anesbench.dataset import FieldMap


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
DEFAULT_DB = "./anesbench.duckdb"


def host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``HOST:PORT`` with a port from 1 to 65535."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return value


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # The dispatcher client (cli/dispatcher_client.py) finds a credential given on the command line in the
    # context's meta, where it wins over the one in the environment (a CronJob's way).
    if value:
        ctx.meta[param.name] = value


def dispatcher_options(*, required: bool = False, help: str | None = None) -> Callable[[Command], Command]:
    """--dispatcher HOST:PORT and its credentials, --dispatcher-ca and --dispatcher-token-file."""
    return option_group(
        click.option("--dispatcher", required=required, callback=host_port, help=help),
        click.option("--dispatcher-ca", type=click.Path(dir_okay=False), expose_value=False, callback=_remember,
                     help=f"Speak TLS to the dispatcher, trusting this PEM CA (else ${CA_ENV})."),
        click.option("--dispatcher-token-file", type=click.Path(dir_okay=False), expose_value=False, callback=_remember,
                     help=f"File holding the dispatcher's bearer token (else ${TOKEN_ENV} or ${TOKEN_FILE_ENV})."),
    )


# Where a command reads or changes the store: the local file --db, or a dispatcher that owns one.
store_options = option_group(click.option("--db", default=DEFAULT_DB, show_default=True), dispatcher_options())

# --fields and --fields-file: read a dataset of another layout through a column mapping.
field_options = option_group(
    click.option("--fields", default=None, metavar="KEY=COLUMN,...",
                 help="Column mapping for a dataset in another layout, e.g. id=qid,question=stem,"
                 "options=A:opa|B:opb|C:opc|D:opd,answer=cop,answer_format=index0,level=difficulty,language=zh "
                 "(options may be one list column; answer_format letter|index0|index1)."),
    click.option("--fields-file", type=click.Path(dir_okay=False), default=None,
                 help="JSON file with the keys of --fields (options may be an object LETTER: COLUMN)."),
)

def field_map(fields: str | None, fields_file: str | None) -> FieldMap | None:
    """The mapping of ``--fields`` or ``--fields-file`` (None: the AnesBench layout)."""
    from anesbench.dataset import parse_fields, read_fields_file

    if fields is not None and fields_file is not None:
        raise click.UsageError("--fields and --fields-file: give one of them")
    if fields is not None:
        return parse_fields(fields)
    return read_fields_file(fields_file) if fields_file is not None else None


def _source(db: str, dispatcher: str | None, read_only: bool = True) -> closing[EmbeddedSource | RemoteSource]:
    from anesbench.cli.sources import open_source  # the store (and gRPC with a dispatcher) load only here

    return open_source(db, dispatcher, read_only)


def _setting(name: str, default: float | None, help: str | None = None) -> Any:
    """The option of a run setting: its range from its one definition (``anesbench.defaults.RUN_BOUNDS``), a float
    option where the default is one."""
    bounds = defaults.RUN_BOUNDS[name]
    kind = (click.FloatRange(bounds.low, bounds.high, min_open=bounds.low_open) if isinstance(default, float)
            else click.IntRange(int(bounds.low), int(bounds.high)))
    return click.option(f"--{name.replace('_', '-')}", type=kind, default=default, show_default=True, help=help)


def _languages(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    languages = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    bad = [lang for lang in languages if lang not in LANGUAGES]
    if bad or not languages:
        raise click.BadParameter(f"unknown language(s) {', '.join(bad) or '(none)'}; choose from {', '.join(LANGUAGES)}")
    return languages


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="anesbench")
def cli() -> None:
    """Evaluate LLMs on AnesBench, the anesthesiology reasoning benchmark."""


@cli.command()
@click.option("--endpoint", "endpoints", multiple=True,
              help="OpenAI-compatible base URL, e.g. http://127.0.0.1:30000/v1; repeat for replicas of one model.")
@click.option("--inference-service", default=None, metavar="NAME",
              help="A KServe InferenceService instead of --endpoint (with --dispatcher): the dispatcher starts it "
              "if it is on demand, waits until it is Ready and uses its URL.")
@click.option("--namespace", default=None, help="Namespace of --inference-service (default: the dispatcher's).")
@click.option("--model", required=True, help="Model name sent in each request and shown on the leaderboard.")
@click.option("--dataset", required=True, help="AnesBench file (.json, .jsonl, .parquet), or a dataset name "
              "in the dispatcher's --datasets-dir.")
@field_options
@click.option("--languages", default=",".join(defaults.DEFAULT_LANGUAGES), show_default=True, callback=_languages,
              help=f"Comma-separated: {','.join(LANGUAGES)}.")
@_setting("concurrency", None, "Requests in flight (default: automatic).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="DuckDB file (embedded mode).")
@click.option("--run-id", default=None, help="Name the run; the same id again resumes it.")
@_setting("request_timeout", defaults.DEFAULT_REQUEST_TIMEOUT_S, "Seconds per attempt.")
@_setting("max_tokens", defaults.DEFAULT_MAX_TOKENS)
@_setting("temperature", defaults.DEFAULT_TEMPERATURE)
@_setting("samples", defaults.DEFAULT_SAMPLES, "Answers per question and language.")
@_setting("max_attempts", defaults.DEFAULT_MAX_ATTEMPTS, "Attempts per request before it counts as failed.")
@click.option("--prompt-template", default=None, help="Bundled template name or a template file "
              "(default: anesbench-cot).")
@click.option("--reuse", is_flag=True, help="Answer requests identical to earlier runs' from the store.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the API key (else $ANESBENCH_API_KEY or $OPENAI_API_KEY).")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None,
              help="PEM file of the CAs to trust for https endpoints (else $SSL_CERT_FILE, else the system's).")
@click.option("--connect-timeout", type=click.FloatRange(0, 600, min_open=True), default=10.0, show_default=True,
              help="Seconds to connect (TCP, proxy tunnel, TLS), apart from --request-timeout.")
@dispatcher_options(help="HOST:PORT of a dispatcher service.")
@click.option("--progress/--no-progress", default=None,
              help="Live progress bar (default: on a terminal; otherwise a progress line every 30 s on stderr).")
@_setting("limit", None, "Only the first N items (a smoke test): N x languages results.")
@_setting("wait_ready", 0.0, "Seconds to wait for the endpoint to be up and serving the model before the run starts.")
@click.option("--elicit", type=click.Choice(defaults.ELICIT_MODES), default=None,
              help="Ask the model, in the same conversation, for its final letter (decoding constrained to the option "
              "letters where the server supports it): where the rules find no answer (default: "
              f"{defaults.DEFAULT_ELICIT}), after every reply, or never. Not with --scoring logprobs.")
@click.option("--scoring", type=click.Choice(defaults.SCORINGS), default=defaults.DEFAULT_SCORING, show_default=True,
              help="generate: a chat reply, graded by the rules; logprobs: the next-token probabilities of the option "
              "letters after a completion prompt (base and continued-pretraining checkpoints).")
def run(dataset: str, fields: str | None, fields_file: str | None, db: str, prompt_template: str | None,
        api_key_file: str | None, ca_bundle: str | None, connect_timeout: float, dispatcher: str | None,
        progress: bool | None, **options: Any) -> None:
    """Evaluate a model: send every question, grade every answer, store every result.

    Proxies come from $HTTPS_PROXY / $HTTP_PROXY (and $NO_PROXY); user:password in an --endpoint
    URL is sent as Basic auth.
    """
    from anesbench.cli.run_modes import run_embedded, run_remote, summary_line
    from anesbench.engine.config import RunConfig
    from anesbench.inference.endpoint import validate_endpoint
    from anesbench.inference.transport import HttpOptions

    if options["inference_service"] is None and not options["endpoints"]:
        raise click.UsageError("one of --endpoint or --inference-service is required")
    if options["inference_service"] is not None and not dispatcher:
        raise click.UsageError("--inference-service: needs --dispatcher (the dispatcher drives InferenceServices)")
    options["endpoints"] = tuple(validate_endpoint(url) for url in options["endpoints"])
    options["elicit"] = options["elicit"] or defaults.default_elicit(options["scoring"])
    config = RunConfig(**options)
    mapping = field_map(fields, fields_file)
    show = sys.stderr.isatty() if progress is None else progress
    mode = "bar" if show else ("line" if progress is None else "off")  # no terminal: a line every 30 s
    if dispatcher:
        if api_key_file:
            raise click.UsageError("--api-key-file: with --dispatcher, API keys come from the dispatcher's environment")
        if ca_bundle:
            raise click.UsageError("--ca-bundle: with --dispatcher, set SSL_CERT_FILE in the dispatcher's environment")
        final = run_remote(dispatcher, config, dataset, mapping, prompt_template, mode)
    else:
        http = HttpOptions(ca_bundle=ca_bundle, connect_timeout=connect_timeout)
        final = run_embedded(config, dataset, mapping, db, prompt_template, api_key_file, mode, http)
    click.echo(summary_line(final))
    if final.status != "completed":
        raise RunFailed(f"run {final.id} {final.status}" + (f": {final.error}" if final.error else ""))


@cli.command()
@store_options
@click.option("--run", "run_ids", multiple=True,
              help="Show this run (repeatable; default: the newest completed run per model, dataset and configuration).")
@click.option("--include-incomplete", is_flag=True,
              help="Also show the newest failed, cancelled or unfinished run per configuration (flagged with *).")
@click.option("--layout", type=click.Choice(["rows", "paper"]), default="rows", show_default=True,
              help="rows: one row per model and language; paper: the AnesBench README's table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True)
def leaderboard(db: str, dispatcher: str | None, run_ids: tuple[str, ...], include_incomplete: bool, layout: str,
                fmt: str) -> None:
    """Accuracy per level (system1, system1.x, system2, overall) and language, with 95 % intervals."""
    from anesbench.leaderboard import render_leaderboard

    with _source(db, dispatcher) as source:
        rows = source.leaderboard(list(run_ids), include_incomplete)
    click.echo(render_leaderboard(rows, fmt, layout))


@cli.command()
@store_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs(db: str, dispatcher: str | None, fmt: str) -> None:
    """One line per run: id, model, dataset, languages, status, done/total, started, finished."""
    from anesbench.leaderboard import render_runs

    with _source(db, dispatcher) as source:
        records = source.list_runs()
    click.echo(render_runs(records, fmt))


@cli.command()
@click.option("--input", "source", default="-", show_default=True, help="JSON Lines file, or - for stdin.")
def grade(source: str) -> None:
    """Extract answers: JSON Lines {"choices": {...}, "response": "..."} in, the same plus "pred" and "method" out."""
    from anesbench.grading import extract_answer

    name, lines = _read_lines(source)
    # Every line is checked before any output is written, so bad input produces no partial output.
    records = [_checked_record(name, number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    for record in records:
        extraction = extract_answer(record["choices"], record["response"], finish_reason=record.get("finish_reason"))
        record["pred"], record["method"] = extraction.pred, extraction.method
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_lines(source: str) -> tuple[str, list[str]]:
    if source == "-":
        return "<stdin>", sys.stdin.read().splitlines()
    try:
        return source, Path(source).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {source}", field="input") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {source}: {exc}", field="input") from None


def _checked_record(name: str, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise InvalidInput(f"{name}:{number}: expected a JSON object")
    choices = record.get("choices")
    if not isinstance(choices, dict) or not choices:
        raise InvalidInput(f"{name}:{number}: field 'choices': expected a non-empty object of letter -> option text")
    for letter, text in choices.items():
        if len(letter) != 1 or letter not in LETTERS or not isinstance(text, str):
            raise InvalidInput(f"{name}:{number}: field 'choices.{letter}': keys are letters A-H, values text")
    if not isinstance(record.get("response"), str):
        raise InvalidInput(f"{name}:{number}: field 'response': expected text")
    if not isinstance(record.get("finish_reason"), str | None):
        raise InvalidInput(f"{name}:{number}: field 'finish_reason': expected text or null")
    return record


@cli.command()
@click.argument("run_id")
@dispatcher_options(required=True)
def cancel(run_id: str, dispatcher: str) -> None:
    """Cancel a run on a dispatcher (finished results are kept)."""
    from anesbench.cli.dispatcher_client import RemoteSource

    run = RemoteSource(dispatcher).cancel(run_id)
    click.echo(f"run {run.id}: {run.status} ({run.done}/{run.total} done)")


@cli.group()
def datasets() -> None:
    """Manage datasets for a dispatcher's --datasets-dir."""


@datasets.command()
@click.option("--repo-id", default="MiliLab/AnesBench", show_default=True, help="Hugging Face dataset repo.")
@click.option("--dest", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--revision", default=None, help="Git revision (branch, tag or commit) to pin.")
@click.option("--name", default="anesbench", show_default=True, help="Dataset name to publish it as.")
@click.option("--skip-if-present", is_flag=True,
              help="Do nothing (and do not contact the hub) when this repo and revision were published before.")
def download(repo_id: str, dest: str, revision: str | None, name: str, skip_if_present: bool) -> None:
    """Download and validate the dataset (token from $HF_TOKEN), then publish it atomically."""
    from anesbench.dataset.download import already_present, download_dataset

    if skip_if_present and already_present(repo_id=repo_id, dest=dest, revision=revision, name=name):
        click.echo(f"dataset {name}: {repo_id}@{revision or 'default branch'} already present in {dest}; not downloaded")
        return
    path = download_dataset(repo_id=repo_id, dest=dest, revision=revision, name=name)
    click.echo(f"dataset {name}: {path}")


@cli.command()
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

    if run_b is not None and run_a == run_b:
        raise InvalidInput(f"compare: RUN_A and RUN_B are the same run {run_a!r}; give two different runs")
    with _source(db, dispatcher) as source:
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


@cli.command()
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
    from anesbench.cli.sources import EmbeddedSource
    from anesbench.store.export import RowWriter, atomic_output, check_target

    if out is None and fmt == "parquet":
        raise InvalidInput("Parquet is binary; give a file with --out", field="out")
    if out is not None:
        check_target(out, force)  # before anything is read
    with _source(db, dispatcher) as source:
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


@cli.command()
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
    from anesbench.report import build_report
    from anesbench.store.export import atomic_output, check_target

    check_target(out, force)
    mapping = field_map(fields, fields_file)
    with _source(db, dispatcher) as source:
        html = build_report(source, list(run_ids), list(datasets), mapping)
    with atomic_output(out, force) as temporary:
        temporary.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)


@cli.command()
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
    with _source(db, dispatcher, read_only=False) as source:
        outcome = source.prune(keep_last, older_than, keep_aggregates)
    what = "results dropped, counts kept" if outcome.kept_aggregates else "deleted"
    click.echo(f"pruned {len(outcome.run_ids)} run(s) ({what}): {', '.join(outcome.run_ids) or '-'}; "
               f"store {outcome.bytes_before / 1e6:.1f} MB -> {outcome.bytes_after / 1e6:.1f} MB")


@cli.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="DuckDB file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@store_options
def backup(out: str, force: bool, db: str, dispatcher: str | None) -> None:
    """A consistent copy of the store, taken while the dispatcher serves; restore: copy it over --db, stopped."""
    from anesbench.store.export import atomic_output

    with atomic_output(out, force) as temporary, _source(db, dispatcher, read_only=False) as source:
        source.backup_to(str(temporary))
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)", err=True)


@cli.command()
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
        import asyncio

        from anesbench import event_loop
        from anesbench.cli.sources import EmbeddedSource
        from anesbench.dataset import load_dataset
        from anesbench.engine.regrade import regrade_run
        from anesbench.grader import LocalGrader
        from anesbench.store import RunRecord, Store
        from anesbench.store.async_store import AsyncStore

        mapping = field_map(fields, fields_file)
        store = AsyncStore(EmbeddedSource(db, read_only=False).store)

        async def embedded() -> RunRecord:
            try:
                languages = (await store.call(Store.get_run, run)).languages
                loaded = await asyncio.to_thread(load_dataset, dataset, languages, fields=mapping)
                return await regrade_run(store, LocalGrader(), loaded, run, new_run_id)
            finally:
                await store.close()

        final = event_loop.run(embedded())
    click.echo(summary_line(final))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes, with one message and no traceback."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="anesbench", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_FAILURE
    except AnesbenchError as exc:
        click.echo(f"error: {message_for(exc)}", err=True)
        return exit_code_for(exc)
    except Exception as exc:  # a bug, not bad input: say so, keep the details for a bug report
        if os.environ.get("ANESBENCH_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (set ANESBENCH_DEBUG=1 for the traceback)", err=True)
        return EXIT_FAILURE
    return EXIT_OK


cli.add_command(serve_cmd.serve)
cli.add_command(serve_cmd.up)

if __name__ == "__main__":
    sys.exit(main())
