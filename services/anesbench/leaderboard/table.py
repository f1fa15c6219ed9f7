"""A table as text, the one layout every board and analysis prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate


def grid(header: Sequence[str], body: Sequence[Sequence[Any]], fmt: str, *, numbers_from: int | None = None) -> str:
    """A table as plain text (``table``) or GitHub Markdown (``markdown``).

    Columns from ``numbers_from`` on are numbers (right-aligned, two decimals); by default none are.
    """
    text_columns = list(range(len(header) if numbers_from is None else numbers_from))
    return tabulate(body, headers=list(header), tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=text_columns or False, stralign="left", floatfmt=".2f", missingval="-")
