"""Credentials that an older anesbench stored with a run (``https://user:secret@host/v1`` in a run spec)
are removed when the file is opened for writing.

Deleting a value is not enough: DuckDB leaves the old bytes in free blocks of the file. So a file that
held any is copied, table by table, into a fresh file that replaces it; this happens once, and only
for a file that needs it.
"""

from __future__ import annotations

import logging
import os

import duckdb

log = logging.getLogger(__name__)

# A quoted URL whose authority holds user info: `"scheme://` then anything up to the `@` before the host.
USERINFO = r'("[a-zA-Z][a-zA-Z0-9+.-]*://)[^/"@\s]*@'
FIND = f"SELECT count(*) FROM run_specs WHERE regexp_matches(spec, '{USERINFO}')"
REMOVE = f"UPDATE run_specs SET spec = regexp_replace(spec, '{USERINFO}', '\\1', 'g')"


def needs_scrub(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(FIND).fetchone()
    return bool(row and row[0])


def scrub_file(path: str) -> None:
    """Remove user info from every stored run spec of the (closed) file at ``path`` and rewrite the file."""
    with duckdb.connect(path) as con:
        con.execute(REMOVE)
        con.execute("CHECKPOINT")
    fresh = f"{path}.scrubbing"
    for leftover in (fresh, f"{fresh}.wal"):
        if os.path.exists(leftover):
            os.remove(leftover)
    with duckdb.connect(fresh) as con:
        name = con.execute("SELECT current_database()").fetchone()
        quoted = path.replace("'", "''")  # ATTACH takes no parameters
        con.execute(f"ATTACH '{quoted}' AS stale (READ_ONLY)")
        con.execute(f'COPY FROM DATABASE stale TO "{name[0] if name else "main"}"')
        con.execute("DETACH stale")
    os.replace(fresh, path)
    log.warning("removed credentials from the run specs stored in %s (rewrote the file)", path)
