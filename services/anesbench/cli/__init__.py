"""The ``anesbench`` command line: a thin adapter over the engine, the store and the services."""
