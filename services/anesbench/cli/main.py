"""``anesbench``: the command line (docs/architecture.md, CLI contract). Heavy modules load inside commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from anesbench import __version__, defaults
from anesbench.cli import analysis_cmd, serve_cmd, store_cmd
from anesbench.cli.exit_codes import exit_code_for, message_for
from anesbench.cli.options import DEFAULT_DB, dispatcher_options, field_map, field_options, store_options
from anesbench.dataset.model import LANGUAGES, LETTERS
from anesbench.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, AnesbenchError, InvalidInput, RunFailed

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _bounded(name: str, kind: type = int) -> click.ParamType:
    """The option type of a run setting, from its one definition (``anesbench.defaults.RUN_BOUNDS``)."""
    bounds = defaults.RUN_BOUNDS[name]
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
@click.option("--languages", default=",".join(defaults.DEFAULT_LANGUAGES), show_default=True, callback=_languages,
              help=f"Comma-separated: {','.join(LANGUAGES)}.")
@click.option("--concurrency", type=_bounded("concurrency"), default=None,
              help="Requests in flight (default: automatic).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="DuckDB file (embedded mode).")
@click.option("--run-id", default=None, help="Name the run; the same id again resumes it.")
@click.option("--request-timeout", type=_bounded("request_timeout", float), default=defaults.DEFAULT_REQUEST_TIMEOUT_S,
              show_default=True,
              help="Seconds per attempt.")
@click.option("--max-tokens", type=_bounded("max_tokens"), default=defaults.DEFAULT_MAX_TOKENS, show_default=True)
@click.option("--temperature", type=_bounded("temperature", float), default=defaults.DEFAULT_TEMPERATURE, show_default=True)
@click.option("--samples", type=_bounded("samples"), default=defaults.DEFAULT_SAMPLES, show_default=True,
              help="Answers per question and language.")
@click.option("--max-attempts", type=_bounded("max_attempts"), default=defaults.DEFAULT_MAX_ATTEMPTS, show_default=True,
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
@dispatcher_options(help="HOST:PORT of a dispatcher service.")
@click.option("--progress/--no-progress", default=None,
              help="Live progress bar (default: on a terminal; otherwise a progress line every 30 s on stderr).")
@click.option("--limit", type=_bounded("limit"), default=None,
              help="Only the first N items (a smoke test): N x languages results.")
@click.option("--wait-ready", type=_bounded("wait_ready", float), default=0.0, show_default=True,
              help="Seconds to wait for the endpoint to be up and serving the model before the run starts.")
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
    from anesbench.cli.sources import open_source
    from anesbench.leaderboard import render_leaderboard

    with closing(open_source(db, dispatcher)) as source:
        rows = source.leaderboard(list(run_ids), include_incomplete)
    click.echo(render_leaderboard(rows, fmt, layout))


@cli.command()
@store_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs(db: str, dispatcher: str | None, fmt: str) -> None:
    """One line per run: id, model, dataset, languages, status, done/total, started, finished."""
    from anesbench.cli.sources import open_source
    from anesbench.leaderboard import render_runs

    with closing(open_source(db, dispatcher)) as source:
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
    response = record.get("response")
    if not isinstance(response, str):
        raise InvalidInput(f"{name}:{number}: field 'response': expected text")
    finish = record.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes, with one message and no traceback."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="anesbench", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
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


for _command in (serve_cmd.serve, serve_cmd.up, analysis_cmd.compare, analysis_cmd.export, analysis_cmd.report,
                 store_cmd.prune, store_cmd.backup, store_cmd.regrade):
    cli.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
