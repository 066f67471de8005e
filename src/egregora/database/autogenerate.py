"""Autogenerate that understands DuckDB: compare, then choose the operation.

Alembic's flow is compare -> ops -> render. This module adds to the first
two steps, through Alembic's documented extension points:

- **compare**: a comparator plugin (``egregora.autogenerate.checks``) that
  detects added, dropped and changed CHECK constraints by their normalized
  expression (DuckDB does not keep constraint names, so Alembic's own
  name-based comparison can't see them), and added or dropped PRIMARY KEYs
  (which Alembic's comparison skips).
- **ops**: :func:`process_revision_directives` rewrites each table's
  operations. Where DuckDB's ``ALTER TABLE`` can do the job, Alembic's plain
  operations stay; where it can't, every change to that table becomes one
  ``op.create_copy_swap`` carrying the complete target and previous
  definitions. Other dialects keep Alembic's plain operations.

On PostgreSQL, which keeps constraint names, CHECKs are compared by name
and PRIMARY KEYs as on DuckDB; the operations stay Alembic's plain ones.

Rendering of the new operation lives in :mod:`egregora.database.render`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.runtime.plugins import Plugin
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import conv

from egregora.database.catalog import changed_check_names, snapshot
from egregora.database.ops import CreateCopySwapOp
from egregora.database.sqltext import normalize_sql
from egregora.database.toimpl import referencing_closure, reflect

log = logging.getLogger(__name__)

PLUGIN_NAME = "egregora.autogenerate.checks"
#: What env.py passes as ``autogenerate_plugins``: Alembic's own, and ours.
AUTOGENERATE_PLUGINS = ["alembic.autogenerate.*", PLUGIN_NAME]


# -- compare --------------------------------------------------------------------


def compare_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop CHECK operations, matching constraints by DuckDB's own expression."""
    if conn_table is None or metadata_table is None or autogen_context.connection is None:
        return PriorityDispatchResult.CONTINUE
    raw = autogen_context.connection.connection.driver_connection
    reflected = snapshot(raw, [tname]).get(tname)
    have = {
        c.expression: c for c in (reflected.constraints if reflected else ()) if c.kind == "CHECK"
    }
    want = {
        expression: check
        for check, expression in canonical_check_expressions(
            metadata_table, autogen_context.dialect
        )
    }
    stub = sa.Table(tname, sa.MetaData(), schema=schema)  # leaves conn_table as reflected
    for expression in sorted(have.keys() - want.keys(), key=str):
        constraint = sa.CheckConstraint(sa.text(str(expression)))
        stub.append_constraint(constraint)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(constraint))
        log.info("Detected removed CHECK (%s) on table %r", expression, tname)
    for expression in sorted(want.keys() - have.keys(), key=str):
        modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(want[expression]))
        log.info("Detected added CHECK (%s) on table %r", expression, tname)
    return PriorityDispatchResult.CONTINUE


def compare_named_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop CHECK operations on a database that keeps constraint names (PostgreSQL).

    Alembic does not compare CHECK constraints at all. PostgreSQL keeps their
    names, and the metadata names every CHECK through its naming convention,
    so they are matched by name; a CHECK that keeps its name but changes its
    expression is found by letting the server spell the new expression
    (catalog.changed_check_names) and becomes a drop and an add.
    """
    if conn_table is None or metadata_table is None or autogen_context.connection is None:
        return PriorityDispatchResult.CONTINUE
    inspector = sa.inspect(autogen_context.connection)
    # name -> the server's text, so that a drop's reverse (the downgrade)
    # re-creates the CHECK that was there
    have = {
        str(c["name"]): str(c["sqltext"])
        for c in inspector.get_check_constraints(tname, schema=schema)
    }
    want = {
        str(c.name): c
        for c in metadata_table.constraints
        if isinstance(c, sa.CheckConstraint) and c.name is not None
    }
    changed = changed_check_names(autogen_context.connection, metadata_table) & have.keys()
    stub = sa.Table(tname, sa.MetaData(), schema=schema)  # leaves conn_table as reflected
    for name in sorted((have.keys() - want.keys()) | changed):
        # conv(): the name is final, not to go through the naming convention again
        constraint = sa.CheckConstraint(sa.text(have[name]), name=conv(name))
        stub.append_constraint(constraint)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(constraint))
        log.info("Detected removed CHECK %s on table %r", name, tname)
    for name in sorted((want.keys() - have.keys()) | changed):
        modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(want[name]))
        log.info(
            "Detected %s CHECK %s on table %r",
            "changed" if name in changed else "added",
            name,
            tname,
        )
    return PriorityDispatchResult.CONTINUE


def compare_primary_key(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop PRIMARY KEY operations: Alembic's own comparison skips primary keys."""
    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE
    want = [c.name for c in metadata_table.primary_key.columns]
    have = [c.name for c in conn_table.primary_key.columns]
    if want == have:
        return PriorityDispatchResult.CONTINUE
    if have:
        if conn_table.primary_key.name is None:  # DuckDB reflects no name
            conn_table.primary_key.name = f"{tname}_pkey"  # type: ignore[assignment]
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(conn_table.primary_key))
        log.info("Detected removed PRIMARY KEY (%s) on table %r", ", ".join(have), tname)
    if want:
        modify_table_ops.ops.append(
            ops.CreatePrimaryKeyOp.from_constraint(metadata_table.primary_key)
        )
        log.info("Detected added PRIMARY KEY (%s) on table %r", ", ".join(want), tname)
    return PriorityDispatchResult.CONTINUE


def canonical_check_expressions(
    table: sa.Table, dialect: sa.Dialect
) -> list[tuple[sa.CheckConstraint, str]]:
    """Each CHECK of ``table`` with the expression DuckDB stores for it.

    The checks are created on a scratch in-memory table with the same
    columns, one by one, so DuckDB itself spells each expression.
    """
    checks = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
    if not checks:
        return []
    scratch = duckdb.connect(":memory:")
    found = []
    try:
        for i, check in enumerate(checks):
            name = f"t{i}"
            probe = sa.Table(
                name,
                sa.MetaData(),
                *(sa.Column(c.name, c.type) for c in table.columns),
                sa.CheckConstraint(check.sqltext),
            )
            scratch.execute(str(CreateTable(probe).compile(dialect=dialect)))
            (expression,) = scratch.execute(
                "SELECT expression FROM duckdb_constraints() "
                "WHERE table_name = ? AND constraint_type = 'CHECK'",
                [name],
            ).fetchone()  # type: ignore[misc]
            found.append((check, normalize_sql(expression)))
    finally:
        scratch.close()
    return found


def setup(plugin: Plugin) -> None:
    for dialect in ("duckdb", "postgresql"):
        plugin.add_autogenerate_comparator(
            compare_primary_key, "table", "primarykey", qualifier=dialect
        )
    plugin.add_autogenerate_comparator(
        compare_named_check_constraints,
        "table",
        "checkconstraints",
        qualifier="postgresql",
        priority=DispatchPriority.MEDIUM,
    )
    plugin.add_autogenerate_comparator(
        compare_check_constraints,
        "table",
        "checkconstraints",
        qualifier="duckdb",
        priority=DispatchPriority.MEDIUM,
    )


Plugin.setup_plugin_from_module(sys.modules[__name__], PLUGIN_NAME)


# -- ops: choose plain ALTER or create_copy_swap ---------------------------------


def process_revision_directives(
    context: MigrationContext, revision: Any, directives: list[ops.MigrationScript]
) -> None:
    """Merge what DuckDB can't ALTER into one ``create_copy_swap`` per table."""
    if context.dialect.name != "duckdb" or context.connection is None:
        return
    metadata = context.opts["target_metadata"]
    for script in directives:
        if script.upgrade_ops is None:
            continue
        upgrade, downgrade = rewrite_for_duckdb(
            context.connection, metadata, script.upgrade_ops.ops
        )
        script.upgrade_ops.ops = upgrade
        script.downgrade_ops = ops.DowngradeOps(ops=downgrade)


def rewrite_for_duckdb(
    connection: sa.Connection, metadata: sa.MetaData, operations: list[ops.MigrateOperation]
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """(upgrade, downgrade) operations, each table's rebuilt where DuckDB needs it.

    The upgrade is judged against the database as it is, the downgrade (the
    reversed operations) against the target metadata: adding a UNIQUE is a
    plain ALTER, but dropping it again is not, so its downgrade is a
    ``create_copy_swap`` while its upgrade stays plain.
    """
    upgrade: list[ops.MigrateOperation] = []
    downgrade: list[ops.MigrateOperation] = []
    for op in _parents_first(metadata, operations):
        if not isinstance(op, ops.ModifyTableOps):
            upgrade.append(op)
            downgrade.insert(0, op.reverse())
            continue
        up_swap = needs_copy_swap(op, _database_state(connection, op.table_name))
        down_swap = needs_copy_swap(op.reverse(), _metadata_state(metadata, op.table_name))
        swap = copy_swap_for(connection, metadata, op) if up_swap or down_swap else None
        upgrade.append(swap if up_swap and swap is not None else op)
        downgrade.insert(0, swap.reverse() if swap is not None else op.reverse())
    return upgrade, downgrade


@dataclass(frozen=True)
class AlterState:
    """What decides whether DuckDB can ALTER a table (measured on DuckDB 2.0).

    - ``referenced``: another table's FOREIGN KEY points at it. DuckDB then
      refuses every ALTER but ADD COLUMN of a nullable column ("Cannot alter
      entry ... because there are entries that depend on it").
    - ``indexed``: it has an explicit index; the same refusal, for the same
      statements (CREATE/DROP INDEX and ADD COLUMN of a nullable column
      still work).
    - ``keyed``: columns in a PRIMARY KEY, UNIQUE or FOREIGN KEY, whose type
      can't change and which can't be dropped.
    """

    referenced: bool
    indexed: bool
    keyed: frozenset[str]


def _parents_first(
    metadata: sa.MetaData, operations: list[ops.MigrateOperation]
) -> list[ops.MigrateOperation]:
    """The per-table operations reordered so referenced tables come first.

    A rebuild of a parent recreates its children from their definitions as
    they are before the revision (reflected when the revision is written);
    it must therefore run before the children's own changes, and after them
    on the way down.
    """
    order = {table.name: i for i, table in enumerate(metadata.sorted_tables)}
    slots = [i for i, op in enumerate(operations) if isinstance(op, ops.ModifyTableOps)]
    tables = sorted(
        (operations[i] for i in slots),
        key=lambda op: order.get(op.table_name, len(order)),  # type: ignore[attr-defined]
    )
    result = list(operations)
    for slot, op in zip(slots, tables, strict=True):
        result[slot] = op
    return result


def needs_copy_swap(table_ops: ops.ModifyTableOps, state: AlterState) -> bool:
    """Whether some change to this table is beyond DuckDB's ALTER TABLE."""
    for op in _flatten(table_ops.ops):
        if isinstance(op, (ops.CreateTableCommentOp, ops.DropTableCommentOp)):
            continue
        if isinstance(op, ops.AddColumnOp):
            if op.column.foreign_keys or op.column.constraints:
                return True  # a column that brings a FOREIGN KEY or CHECK
            if not op.column.nullable and (state.referenced or state.indexed):
                return True  # ADD COLUMN ... NOT NULL is refused there, default or not
            continue
        if isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)):
            continue
        if state.referenced or state.indexed:
            return True
        if isinstance(op, ops.AddConstraintOp):
            if op.constraint_type in ("unique", "primarykey"):
                continue
            return True  # CHECK and FOREIGN KEY can't be added by ALTER
        if isinstance(op, ops.DropConstraintOp):
            return True  # no constraint can be dropped by ALTER
        if isinstance(op, ops.AlterColumnOp):
            if op.modify_type is not None and op.column_name in state.keyed:
                return True
            continue
        if isinstance(op, ops.DropColumnOp):
            if op.column_name in state.keyed:
                return True
            continue
        return True  # an operation this module does not know: rebuild, to be safe
    return False


def copy_swap_for(
    connection: sa.Connection, metadata: sa.MetaData, table_ops: ops.ModifyTableOps
) -> CreateCopySwapOp:
    name = table_ops.table_name
    target = metadata.tables[name].to_metadata(sa.MetaData())
    previous = _portable(reflect(connection, name))
    dependents = [_portable(reflect(connection, d)) for d in referencing_closure(connection, name)]
    log.info("DuckDB can't ALTER these changes to %r: using create_copy_swap", name)
    return CreateCopySwapOp(target, previous=previous, dependents=dependents)


def _portable(table: sa.Table) -> sa.Table:
    """A reflected table without DuckDB's generated constraint names."""
    for constraint in table.constraints:
        if isinstance(constraint, (sa.CheckConstraint, sa.ForeignKeyConstraint)):
            constraint.name = None  # type: ignore[assignment]
    return table


def _database_state(connection: sa.Connection, name: str) -> AlterState:
    """The table as the database has it."""
    raw = connection.connection.driver_connection
    shape = snapshot(raw, [name]).get(name)
    keyed = {
        column
        for constraint in (shape.constraints if shape is not None else ())
        if constraint.kind != "CHECK"
        for column in constraint.columns
    }
    return AlterState(
        referenced=bool(referencing_closure(connection, name)),
        indexed=bool(sa.inspect(connection).get_indexes(name)),
        keyed=frozenset(keyed),
    )


def _metadata_state(metadata: sa.MetaData, name: str) -> AlterState:
    """The table as the metadata defines it (the state a downgrade starts from)."""
    table = metadata.tables.get(name)
    if table is None:
        return AlterState(referenced=False, indexed=False, keyed=frozenset())
    referenced = any(
        fk.referred_table is table
        for other in metadata.tables.values()
        if other is not table
        for fk in other.foreign_key_constraints
    )
    keyed = {
        column.name
        for constraint in table.constraints
        if isinstance(
            constraint, (sa.PrimaryKeyConstraint, sa.UniqueConstraint, sa.ForeignKeyConstraint)
        )
        for column in constraint.columns
    }
    return AlterState(referenced=referenced, indexed=bool(table.indexes), keyed=frozenset(keyed))


def _flatten(operations: Iterable[ops.MigrateOperation]) -> Iterable[ops.MigrateOperation]:
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from _flatten(op.ops)
        else:
            yield op
