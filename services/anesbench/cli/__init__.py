"""The ``anesbench`` command line: a thin adapter over the engine, the store and the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Command = TypeVar("Command", bound=Callable[..., Any])


def option_group(*options: Callable[[Command], Command]) -> Callable[[Command], Command]:
    """Several options as one decorator, listed in the order given."""
    def apply(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command

    return apply
