"""AnesBench datasets: the item model, loading from JSON / JSON Lines / Parquet, and validation."""

from anesbench.dataset.load import Dataset, dataset_from_items, load_dataset
from anesbench.dataset.model import LANGUAGES, LEVEL_NAMES, Item, LocalizedQuestion

__all__ = [
    "LANGUAGES",
    "LEVEL_NAMES",
    "Dataset",
    "Item",
    "LocalizedQuestion",
    "dataset_from_items",
    "load_dataset",
]
