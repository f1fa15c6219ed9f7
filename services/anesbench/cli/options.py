"""Option values and checks shared by several commands."""

from __future__ import annotations

import click

DEFAULT_DB = "./anesbench.duckdb"


def host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``HOST:PORT`` with a port from 1 to 65535."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return value
