"""How much disk a store takes, so that a server can refuse work before its volume is full."""

from __future__ import annotations

import os

from anesbench.errors import QuotaExceeded


def file_bytes(path: str) -> int:
    """Bytes of the DuckDB file and its write-ahead log (0 for an in-memory store)."""
    return sum(os.path.getsize(p) for p in (path, f"{path}.wal") if os.path.exists(p))


def check_budget(path: str, budget: int, adding: int) -> None:
    """Refuse ``adding`` more bytes when the store at ``path`` would pass ``budget`` (0: no budget).

    >>> check_budget(":memory:", 100, 10)
    >>> try:
    ...     check_budget(":memory:", 5, 10)
    ... except QuotaExceeded as exc:
    ...     print(exc.message[:38])
    the store at :memory: holds 0 bytes; 1
    """
    if not budget:
        return
    used = file_bytes(path)
    if used + adding > budget:
        raise QuotaExceeded(f"the store at {path} holds {used} bytes; {adding} more would pass its budget of "
                            f"{budget} bytes ({{store_budget_bytes}}): export and delete old runs, or raise the budget",
                            mentions=("store_budget_bytes",))
