"""``anesbench``: the command line (docs/architecture.md, CLI contract). Heavy modules load inside commands."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click

from anesbench import __version__
from anesbench.cli.exit_codes import BAD_INPUT, FAILURE, OK, exit_code_for, message_for
from anesbench.cli.options import DEFAULT_DB, dispatcher_credentials, field_map, field_options
from anesbench.cli.options import host_port as _host_port
from anesbench.dataset.model import LANGUAGES
from anesbench.defaults import (
    DEFAULT_ELICIT,
    DEFAULT_LANGUAGES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SAMPLES,
    DEFAULT_SCORING,
    DEFAULT_TEMPERATURE,
    ELICIT_MODES,
    RUN_BOUNDS,
    SCORINGS,
    default_elicit,
)
from anesbench.errors import AnesbenchError, RunFailed

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _bounded(name: str, kind: type = int) -> click.ParamType:
    """The option type of a run setting, from its one definition (``anesbench.defaults.RUN_BOUNDS``)."""
    bounds = RUN_BOUNDS[name]
    if kind is int:
        return click.IntRange(int(bounds.low), int(bounds.high))
    return click.FloatRange(bounds.low, bounds.high, min_open=bounds.low_open)


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
@click.option("--languages", default=",".join(DEFAULT_LANGUAGES), show_default=True, callback=_languages,
              help=f"Comma-separated: {','.join(LANGUAGES)}.")
@click.option("--concurrency", type=_bounded("concurrency"), default=None,
              help="Requests in flight (default: automatic).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="DuckDB file (embedded mode).")
@click.option("--run-id", default=None, help="Name the run; the same id again resumes it.")
@click.option("--request-timeout", type=_bounded("request_timeout", float), default=DEFAULT_REQUEST_TIMEOUT_S,
              show_default=True,
              help="Seconds per attempt.")
@click.option("--max-tokens", type=_bounded("max_tokens"), default=DEFAULT_MAX_TOKENS, show_default=True)
@click.option("--temperature", type=_bounded("temperature", float), default=DEFAULT_TEMPERATURE, show_default=True)
@click.option("--samples", type=_bounded("samples"), default=DEFAULT_SAMPLES, show_default=True,
              help="Answers per question and language.")
@click.option("--max-attempts", type=_bounded("max_attempts"), default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              help="Attempts per request before it counts as failed.")
@click.option("--prompt-template", default=None, help="Bundled template name or a template file "
              "(default: anesbench-cot).")
@click.option("--reuse", is_flag=True, help="Answer requests identical to earlier runs' from the store.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the API key (else $ANESBENCH_API_KEY or $OPENAI_API_KEY).")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None,
              help="PEM file of the CAs to trust for https endpoints (else $SSL_CERT_FILE, else the system's).")
@click.option("--connect-timeout", type=click.FloatRange(0, 600, min_open=True), default=10.0, show_default=True,
              help="Seconds to connect (TCP, proxy tunnel, TLS), apart from --request-timeout.")
@click.option("--dispatcher", default=None, callback=_host_port, help="HOST:PORT of a dispatcher service.")
@dispatcher_credentials
@click.option("--progress/--no-progress", default=None,
              help="Live progress bar (default: on a terminal; otherwise a progress line every 30 s on stderr).")
@click.option("--limit", type=_bounded("limit"), default=None,
              help="Only the first N items (a smoke test): N x languages results.")
@click.option("--wait-ready", type=_bounded("wait_ready", float), default=0.0, show_default=True,
              help="Seconds to wait for the endpoint to be up and serving the model before the run starts.")
@click.option("--elicit", type=click.Choice(ELICIT_MODES), default=None,
              help="Ask the model, in the same conversation, for its final letter (decoding constrained to the "
              f"option letters where the server supports it): where the rules find no answer (default: {DEFAULT_ELICIT}), "
              "after every reply, or never. Not with --scoring logprobs.")
@click.option("--scoring", type=click.Choice(SCORINGS), default=DEFAULT_SCORING, show_default=True,
              help="generate: a chat reply, graded by the rules; logprobs: the next-token probabilities of the option "
              "letters after a completion prompt (base and continued-pretraining checkpoints).")
def run(dataset: str, fields: str | None, fields_file: str | None, db: str, prompt_template: str | None,
        api_key_file: str | None, ca_bundle: str | None, connect_timeout: float, dispatcher: str | None,
        progress: bool | None, **options: Any) -> None:
    """Evaluate a model: send every question, grade every answer, store every result.

    Proxies come from $HTTPS_PROXY / $HTTP_PROXY (and $NO_PROXY); user:password in an --endpoint
    URL is sent as Basic auth.
    """
    from anesbench.engine.config import RunConfig
    from anesbench.inference.endpoint import validate_endpoint
    from anesbench.inference.transport import HttpOptions

    if options["inference_service"] is None and not options["endpoints"]:
        raise click.UsageError("one of --endpoint or --inference-service is required")
    if options["inference_service"] is not None and not dispatcher:
        raise click.UsageError("--inference-service: needs --dispatcher (the dispatcher drives InferenceServices)")
    options["endpoints"] = tuple(validate_endpoint(url) for url in options["endpoints"])
    options["elicit"] = options["elicit"] or default_elicit(options["scoring"])
    config = RunConfig(**options)
    mapping = field_map(fields, fields_file)
    show = sys.stderr.isatty() if progress is None else progress
    mode = "bar" if show else ("line" if progress is None else "off")  # no terminal: a line every 30 s
    if dispatcher:
        from anesbench.cli.run_remote import run_remote

        if api_key_file:
            raise click.UsageError("--api-key-file: with --dispatcher, API keys come from the dispatcher's environment")
        if ca_bundle:
            raise click.UsageError("--ca-bundle: with --dispatcher, set SSL_CERT_FILE in the dispatcher's environment")
        final = run_remote(dispatcher, config, dataset, mapping, prompt_template, mode)
    else:
        from anesbench.cli.run_embedded import run_embedded

        http = HttpOptions(ca_bundle=ca_bundle, connect_timeout=connect_timeout)
        final = run_embedded(config, dataset, mapping, db, prompt_template, api_key_file, mode, http)
    if final.status != "completed":
        raise RunFailed(f"run {final.id} {final.status}" + (f": {final.error}" if final.error else ""))


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--dispatcher", default=None, callback=_host_port)
@dispatcher_credentials
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

    if dispatcher:
        from anesbench.cli.remote_reads import remote_leaderboard

        rows = remote_leaderboard(dispatcher, list(run_ids), include_incomplete)
    else:
        with _read_store(db) as store:
            rows = store.leaderboard(list(run_ids), include_incomplete)
    click.echo(render_leaderboard(rows, fmt, layout))


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--dispatcher", default=None, callback=_host_port)
@dispatcher_credentials
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs(db: str, dispatcher: str | None, fmt: str) -> None:
    """One line per run: id, model, dataset, languages, status, done/total, started, finished."""
    from anesbench.leaderboard import render_runs

    if dispatcher:
        from anesbench.cli.remote_reads import remote_runs

        records = remote_runs(dispatcher)
    else:
        with _read_store(db) as store:
            records = store.list_runs()
    click.echo(render_runs(records, fmt))


@cli.command()
@click.option("--input", "source", default="-", show_default=True, help="JSON Lines file, or - for stdin.")
def grade(source: str) -> None:
    """Extract answers: JSON Lines {"choices": {...}, "response": "..."} in, the same plus "pred" and "method" out."""
    from anesbench.cli.grade_lines import grade_lines

    grade_lines(source, sys.stdout)


@cli.command()
@click.argument("run_id")
@click.option("--dispatcher", required=True, callback=_host_port)
@dispatcher_credentials
def cancel(run_id: str, dispatcher: str) -> None:
    """Cancel a run on a dispatcher (finished results are kept)."""
    from anesbench.cli.remote_reads import remote_cancel

    run = remote_cancel(dispatcher, run_id)
    click.echo(f"run {run.id}: {run.status} ({run.done}/{run.total} done)")


@contextlib.contextmanager
def _read_store(path: str) -> Iterator[Any]:
    """The DuckDB file opened read-only for a report; a missing file is bad input, not an empty report."""
    from pathlib import Path

    from anesbench.errors import InvalidInput
    from anesbench.store import Store

    if not Path(path).is_file():
        raise InvalidInput(f"no such file: {path}", field="db")
    store = Store(path, read_only=True)
    try:
        yield store
    finally:
        store.close()


def _register_commands() -> None:
    """Add the commands that live in modules of their own (imported here, after `cli` exists)."""
    from anesbench.cli import analysis_cmd, datasets_cmd, regrade_cmd, retention_cmd, serve_cmd, up_cmd

    cli.add_command(serve_cmd.serve)
    cli.add_command(datasets_cmd.datasets)
    cli.add_command(up_cmd.up)
    cli.add_command(analysis_cmd.compare)
    cli.add_command(analysis_cmd.export)
    cli.add_command(analysis_cmd.report)
    cli.add_command(retention_cmd.prune)
    cli.add_command(retention_cmd.backup)
    cli.add_command(regrade_cmd.regrade)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes, with one message and no traceback."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="anesbench", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return BAD_INPUT
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else FAILURE
    except AnesbenchError as exc:
        click.echo(f"error: {message_for(exc)}", err=True)
        return exit_code_for(exc)
    except Exception as exc:  # a bug, not bad input: say so, keep the details for a bug report
        if os.environ.get("ANESBENCH_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (set ANESBENCH_DEBUG=1 for the traceback)", err=True)
        return FAILURE
    return OK


_register_commands()

if __name__ == "__main__":
    sys.exit(main())
