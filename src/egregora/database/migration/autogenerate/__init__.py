"""Autogenerate: compare the database with the metadata (compare.py), then write
the operations a revision needs (rewrite.py)."""
