"""Option values and checks shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from anesbench.wire import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV

if TYPE_CHECKING:
    from anesbench.dataset import FieldMap

Command = TypeVar("Command", bound=Callable[..., Any])

DEFAULT_DB = "./anesbench.duckdb"


def option_group(*options: Callable[[Command], Command]) -> Callable[[Command], Command]:
    """Several options as one decorator, listed in the order given."""
    def apply(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``HOST:PORT`` with a port from 1 to 65535."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return value


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # The dispatcher client (cli/sources.py) finds a credential given on the command line in the
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
