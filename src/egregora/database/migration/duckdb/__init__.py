"""DuckDB: the impl, and what a rebuild asks of DuckDB's catalog before it changes anything."""
