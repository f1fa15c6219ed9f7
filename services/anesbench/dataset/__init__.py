"""AnesBench datasets: the item model, loading from JSON / JSON Lines / Parquet, and validation."""

from anesbench.dataset.load import Dataset, dataset_from_items, load_dataset
from anesbench.dataset.model import LANGUAGES, Item, LocalizedQuestion
from anesbench.dataset.validate import FieldMap, parse_fields, read_fields_file

__all__ = [
    "LANGUAGES",
    "Dataset",
    "FieldMap",
    "Item",
    "LocalizedQuestion",
    "dataset_from_items",
    "load_dataset",
    "parse_fields",
    "read_fields_file",
]
