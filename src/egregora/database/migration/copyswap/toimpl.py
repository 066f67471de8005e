"""Binding ``op.create_copy_swap`` to its execution (Alembic's toimpl split): thin.

Reads the run's choices from the migration context, then hands over to
:mod:`.run`, online or offline. Any unexpected failure becomes one paragraph
naming the operation; the run's transaction rolls back.
"""

from __future__ import annotations

from alembic.operations import Operations

from egregora.database.migration.copyswap.engine import engine_for
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.pending import record
from egregora.database.migration.copyswap.run import run_offline, run_online
from egregora.database.migration.errors import (
    INTERRUPTED,
    MigrationFailed,
    SchemaError,
    first_line,
    is_interrupt,
)
from egregora.database.migration.namerecord import keep_names_on
from egregora.database.migration.policy import EGREGORA_ROWS
from egregora.database.migration.runstate import (
    ON_VIOLATION_OPTION,
    REPORT_OPTION,
    ROW_POLICY_OPTION,
    VIOLATIONS_OPTION,
    current_revision,
)


@Operations.implementation_for(CreateCopySwapOp)
def create_copy_swap(operations: Operations, operation: CreateCopySwapOp) -> None:
    context = operations.migration_context
    on_violation = operation.on_violation or context.opts.get(ON_VIOLATION_OPTION) or "fail"
    engine_for(context.dialect.name)  # refuses any other database first
    policy = context.opts.get(ROW_POLICY_OPTION, EGREGORA_ROWS)
    revision = current_revision()
    if context.as_sql:
        run_offline(operations, operation, on_violation, revision, policy)
        return
    keep_names_on(operations.get_bind(), operation.table)  # DuckDB forgets them: namerecord.py
    collector = context.opts.get(VIOLATIONS_OPTION)
    report = context.opts.get(REPORT_OPTION)
    try:
        if record(operations.get_bind(), operation, on_violation, revision, policy):
            return  # written with the table's later rebuilds in this run (pending.py)
        run_online(
            operations.get_bind(), operation, on_violation, revision, collector, report, policy
        )
    except SchemaError:
        raise
    except Exception as exc:  # DuckDB's, SQLAlchemy's: say which operation, roll back
        if is_interrupt(exc):
            raise MigrationFailed(INTERRUPTED) from None
        raise MigrationFailed(
            f"create_copy_swap on {operation.table.name} failed: {first_line(exc)}. The "
            "migration was rolled back; the database is unchanged."
        ) from None
