"""Option values and checks shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from anesbench.wire.auth import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV

if TYPE_CHECKING:
    from anesbench.dataset import FieldMap

Command = TypeVar("Command", bound=Callable[..., Any])

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


def field_options(command: Command) -> Command:
    """``--fields`` and ``--fields-file``: read a dataset of another layout through a column mapping."""
    command = click.option("--fields-file", type=click.Path(dir_okay=False), default=None,
                           help="JSON file with the keys of --fields (options may be an object LETTER: COLUMN).")(command)
    return click.option("--fields", default=None, metavar="KEY=COLUMN,...",
                        help="Column mapping for a dataset in another layout, e.g. id=qid,question=stem,"
                        "options=A:opa|B:opb|C:opc|D:opd,answer=cop,answer_format=index0,level=difficulty,language=zh "
                        "(options may be one list column; answer_format letter|index0|index1).")(command)


def field_map(fields: str | None, fields_file: str | None) -> FieldMap | None:
    """The mapping of ``--fields`` or ``--fields-file`` (None: the AnesBench layout)."""
    from anesbench.dataset import parse_fields, read_fields_file

    if fields is not None and fields_file is not None:
        raise click.UsageError("--fields and --fields-file: give one of them")
    if fields is not None:
        return parse_fields(fields)
    return read_fields_file(fields_file) if fields_file is not None else None
