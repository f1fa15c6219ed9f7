"""DuckDB persistence: run records, results written in idempotent batches, leaderboard queries."""

from anesbench.store.database import Store
from anesbench.store.records import ResultRow, RunRecord

__all__ = ["ResultRow", "RunRecord", "Store"]
