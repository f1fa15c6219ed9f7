"""Option values and checks shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from anesbench.wire.auth import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV

DEFAULT_DB = "./anesbench.duckdb"


def host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``HOST:PORT`` with a port from 1 to 65535."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return value


def _to_environment(variable: str, *, wins_over: str = "") -> Callable[[click.Context, click.Parameter, str | None], None]:
    # The dispatcher client reads its credentials where a CronJob puts them, the environment; an option
    # given on the command line lands there too, so both ways meet in one place (anesbench.wire.auth).
    def store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            os.environ[variable] = value
            os.environ.pop(wins_over, None)

    return store


def dispatcher_credentials(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dispatcher-ca and --dispatcher-token-file, beside every --dispatcher option."""
    fn = click.option("--dispatcher-token-file", type=click.Path(dir_okay=False), expose_value=False,
                      callback=_to_environment(TOKEN_FILE_ENV, wins_over=TOKEN_ENV),
                      help=f"File holding the dispatcher's bearer token (else ${TOKEN_ENV} or ${TOKEN_FILE_ENV}).")(fn)
    return click.option("--dispatcher-ca", type=click.Path(dir_okay=False), expose_value=False,
                        callback=_to_environment(CA_ENV),
                        help=f"Speak TLS to the dispatcher, trusting this PEM CA (else ${CA_ENV}).")(fn)
