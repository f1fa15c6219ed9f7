"""The dispatcher's wire contract as both ends read it, the CLI (its client) and the dispatcher (its server).

:mod:`~anesbench.wire.convert` turns ``anesbench.v1`` messages into the engine's types and back,
:mod:`~anesbench.wire.auth` is how a client finds its credentials, and :data:`DATASET_NAME` is what a
``StartRunRequest`` may name as a dataset (else the client takes the value for a path):

>>> bool(DATASET_NAME.match("anesbench-v1.2")), bool(DATASET_NAME.match("../etc"))
(True, False)

Below ``cli`` and ``dispatcher``, above the engine's types; not in ``anesbench/v1/``, which holds only
generated code that the grader and serving layer import without the engine's types.
"""

import re

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
