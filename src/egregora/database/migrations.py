"""Migration operations for DuckDB and PostgreSQL: importing this module registers them.

The import path frozen revisions and ``alembic/env.py`` use. ``op.create_copy_swap``
(:class:`~egregora.database.migration.copyswap.op.CreateCopySwapOp`) rebuilds a
table in one transaction where DuckDB's ``ALTER TABLE`` falls short, and alters
it in place on PostgreSQL. Importing registers the operation on Alembic's
``Operations``, its implementation, its autogenerate renderer, and this
project's Alembic impls (:mod:`egregora.database.migration.impl`).
:func:`has_table` asks whether a table exists in the middle of a run.
"""

from alembic import op
from egregora.database.migration import dialects  # noqa: F401  (registration side effects)
from egregora.database.migration.copyswap import render, toimpl  # noqa: F401  (likewise)
from egregora.database.migration.copyswap.held import has_table as _has_table
from egregora.database.migration.copyswap.model import CopySwapPlan
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.planner import plan_copy_swap
from egregora.database.migration.dialects import ours

__all__ = ["CopySwapPlan", "CreateCopySwapOp", "has_table", "plan_copy_swap"]


def has_table(name: str) -> bool:
    """Whether the table ``name`` exists now, in a revision's ``upgrade()`` (online).

    As ``name in sa.inspect(op.get_bind()).get_table_names()``, but on DuckDB
    it does not have every rebuild the run holds back written first (a
    catalog read does, see copyswap/held.py): only the one that may create
    ``name``.
    """
    return _has_table(ours(op.get_context().impl), name)
