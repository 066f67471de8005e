"""Migration operations for DuckDB and PostgreSQL: importing this module registers them.

The import path frozen revisions and ``alembic/env.py`` use. ``op.create_copy_swap``
(:class:`~egregora.database.migration.copyswap.op.CreateCopySwapOp`) rebuilds a
table in one transaction where DuckDB's ``ALTER TABLE`` falls short, and alters
it in place on PostgreSQL. Importing registers the operation on Alembic's
``Operations``, its implementation, its autogenerate renderer, and this
project's Alembic impls (:mod:`egregora.database.migration.impl`).
"""

from egregora.database.migration import dialects  # noqa: F401  (registration side effects)
from egregora.database.migration.copyswap import render, toimpl  # noqa: F401  (likewise)
from egregora.database.migration.copyswap.model import CopySwapPlan
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.planner import plan_copy_swap

__all__ = ["CopySwapPlan", "CreateCopySwapOp", "plan_copy_swap"]
