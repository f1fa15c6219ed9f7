"""``anesbench export``: every result of a run as JSON Lines, CSV or Parquet, streamed."""

from anesbench.export.output import atomic_output
from anesbench.export.writers import RowWriter, open_writer

__all__ = ["RowWriter", "atomic_output", "open_writer"]
