"""The dispatcher's wire contract as both ends read it: the CLI (its client) and the dispatcher (its server).

What they must agree on beyond the generated messages lives here, once: :mod:`~anesbench.wire.convert` turns
``anesbench.v1`` messages into the engine's types and back, :mod:`~anesbench.wire.auth` is how a client finds
its credentials, and :data:`DATASET_NAME` is what a ``StartRunRequest`` may name as a dataset (the client
decides by it whether a value is a name to send or a path it cannot find; the dispatcher matches it against
its datasets directory):

>>> bool(DATASET_NAME.match("anesbench-v1.2")), bool(DATASET_NAME.match("../etc"))
(True, False)

The package sits below ``cli`` and ``dispatcher`` (both import it, it imports neither) and above the engine,
store and dataset types it converts. It is not ``anesbench/v1/``: that folder holds only what
``scripts/gen_protos.py`` writes, and the generated modules are imported by the grader and the serving
layer, which must not depend on the engine's types as this package does.
"""

import re

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
