"""The dispatcher service: owns runs and the DuckDB file, keeps inference servers busy."""
