"""Binding ``op.create_copy_swap`` to its execution (Alembic's toimpl split): thin.

Asks the impl Alembic chose for the dialect (ours, or a refusal), takes the
revision once, then hands over: into the script offline (:mod:`.script`),
else to the run (:func:`.rebuild.apply`: held back, or rebuilt now). Any
unexpected failure becomes one paragraph naming the operation; the run's
transaction rolls back.
"""

from __future__ import annotations

from alembic.operations import Operations

from egregora.database.migration.copyswap.model import Change
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.rebuild import apply
from egregora.database.migration.copyswap.script import write_script
from egregora.database.migration.dialects import ours
from egregora.database.migration.errors import failing_as
from egregora.database.migration.runstate import current_revision

__all__ = ["create_copy_swap"]


@Operations.implementation_for(CreateCopySwapOp)
def create_copy_swap(operations: Operations, operation: CreateCopySwapOp) -> None:
    impl = ours(operations.impl)
    change = Change(
        operation.table,
        operation.column_map,
        operation.previous,
        operation.dependents,
        current_revision(),
        impl.run.mode(operation.on_violation),
        impl.run.policy,
    )
    if impl.as_sql:
        write_script(impl, change)
        return
    with failing_as(f"create_copy_swap on {change.table} failed"):
        apply(impl, change)
