"""Migration operations for DuckDB: importing this module registers them.

``op.create_copy_swap`` (:class:`~egregora.database.ops.CreateCopySwapOp`)
rebuilds a table in one transaction where DuckDB's ``ALTER TABLE`` falls
short. Importing registers the operation on Alembic's ``Operations``, its
implementation (:mod:`.toimpl`) and its autogenerate renderer (:mod:`.render`).
"""

from egregora.database import impl, render, toimpl  # noqa: F401  (registration side effects)
from egregora.database.ops import CreateCopySwapOp
from egregora.database.plan import CopySwapPlan, plan_copy_swap

__all__ = ["CopySwapPlan", "CreateCopySwapOp", "plan_copy_swap"]
