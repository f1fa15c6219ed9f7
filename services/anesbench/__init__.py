"""anesbench: evaluate LLMs on the AnesBench anesthesiology benchmark."""

__version__ = "0.1.0"
