"""Egregora's database schema and its evolution.

``egregora.database.schemas`` holds the SQLAlchemy Core metadata and is safe
to import at run time; everything that needs Alembic lives in the other
modules and is imported by ``alembic/env.py``.
"""
