"""duckdb_versions.py's differences, measured again on the DuckDB this suite runs on."""

from __future__ import annotations

import duckdb

from egregora.database.migration.duckdb_versions import features


def test_hash_follows_collation_as_measured() -> None:
    """Whether hash() sees 'A' and 'a' as GROUP BY does under NOCASE: the duplicate-key
    screen (copyswap/duckdb.py) counts on it where the flag says so."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR COLLATE NOCASE, n INTEGER)")
    con.execute("INSERT INTO t VALUES ('A', 1), ('a', 1), ('b', 1)")
    groups = con.execute("SELECT count(*) FROM (SELECT k, n FROM t GROUP BY k, n)").fetchone()
    hashes = con.execute("SELECT count(DISTINCT hash(k, n)) FROM t").fetchone()
    assert groups == (2,)
    assert (hashes == groups) is features().hash_follows_collation
