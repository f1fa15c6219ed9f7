"""The dispatcher's wire contract as both ends read it, the CLI (its client) and the dispatcher (its server).

:mod:`~anesbench.wire.convert` turns ``anesbench.v1`` messages into the engine's types and back; the
variables below hold a client's credentials (the bearer token sent as ``authorization: Bearer`` metadata,
the CA of the dispatcher's certificate), and :data:`DATASET_NAME` is what a ``StartRunRequest`` may name as
a dataset (else the client takes the value for a path):

>>> bool(DATASET_NAME.match("anesbench-v1.2")), bool(DATASET_NAME.match("../etc"))
(True, False)

Not in ``anesbench/v1/``: that holds only generated code, which the grader and serving layer import without
the engine's types.
"""

import re

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TOKEN_ENV = "ANESBENCH_DISPATCHER_TOKEN"
TOKEN_FILE_ENV = "ANESBENCH_DISPATCHER_TOKEN_FILE"
CA_ENV = "ANESBENCH_DISPATCHER_CA"
