"""The dispatcher's wire contract as both ends read it: the CLI (its client) and the dispatcher (its server).

What a client and the server must agree on beyond the generated messages lives here, once:
:mod:`~anesbench.wire.convert` turns ``anesbench.v1`` messages into the engine's types and back,
:mod:`~anesbench.wire.auth` is the bearer token a client sends, and :data:`~anesbench.wire.names.DATASET_NAME`
is what a request may name as a dataset. The package sits below ``cli`` and ``dispatcher`` (both import
it, it imports neither) and above the engine, store and dataset types it converts.

It is not ``anesbench/v1/`` next to the generated code: that folder holds only what
``scripts/gen_protos.py`` writes (checked for drift), and the generated modules are imported by the
grader and the serving layer, which must not depend on the engine's types as this package does.
"""
