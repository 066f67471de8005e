"""Egregora's database schema and its evolution.

The application imports :mod:`.schemas` (the SQLAlchemy Core metadata),
:mod:`.guard` (the append-only guard on DuckDB) and :mod:`.erd`; none of them
imports Alembic. Migrations live in :mod:`.migration`; :mod:`.migrations`
registers ``op.create_copy_swap`` for revision scripts.
"""
