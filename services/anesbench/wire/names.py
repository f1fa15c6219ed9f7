"""What a ``StartRunRequest`` may name as a dataset: the client decides by it whether a value is a name
to send or a path it cannot find, and the dispatcher matches it against its datasets directory.

>>> bool(DATASET_NAME.match("anesbench-v1.2")), bool(DATASET_NAME.match("../etc"))
(True, False)
"""

from __future__ import annotations

import re

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
