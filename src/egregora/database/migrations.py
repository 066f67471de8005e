"""Migration operations for DuckDB (placeholder until create_copy_swap lands)."""
