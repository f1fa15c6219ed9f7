"""docs/architecture.md's CLI contract lists every command and option of the CLI, and nothing else.

The contract's synopses are the code spans that begin with ``anesbench``: the command is the words up
to the first placeholder or option, its options every ``--name`` in the span.
"""

from __future__ import annotations

import re

import click

from anesbench.cli.main import cli
from tests.conftest import ROOT

SYNOPSIS = re.compile(r"`anesbench((?: [a-z][a-z-]*)+)([^`]*)`")
OPTION = re.compile(r"--[a-z][a-z-]*")


def documented() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## CLI contract", 1)[1].split("\n## ", 1)[0]
    found: dict[str, set[str]] = {}
    for words, rest in SYNOPSIS.findall(section):
        found.setdefault(words.strip(), set()).update(OPTION.findall(rest))
    return found


def implemented(group: click.Group = cli, prefix: str = "") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= implemented(command, path + " ")
        else:
            found[path] = {opt for param in command.params if isinstance(param, click.Option)
                           for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--") and opt != "--help"}
    return found


def test_the_contract_parser_reads_the_synopses() -> None:
    contract = documented()
    assert {"--endpoint", "--inference-service", "--no-progress"} <= contract["run"]
    assert "--kube-namespace" in contract["serve dispatcher"]


def test_the_cli_contract_lists_every_command_and_option_and_nothing_else() -> None:
    contract, cli_options = documented(), implemented()
    assert sorted(contract) == sorted(cli_options)
    for command, options in cli_options.items():
        assert contract[command] == options, (command, sorted(options - contract[command]),
                                              sorted(contract[command] - options))
