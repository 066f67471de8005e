"""Autogenerate's second step: per table, Alembic's plain operations or one create_copy_swap.

A table's changes stay plain only when every one of them is something
DuckDB's ``ALTER TABLE`` can do on that table (the measured rule table in
:mod:`egregora.database.migration.capabilities`) *and* cannot trip on the rows already
there. Everything else about the table becomes one ``op.create_copy_swap``
carrying the complete target and previous definitions, because only that
operation gives a change that can meet bad rows the project's guarantees:
violations named before any change, ``-x on_violation=quarantine``,
``-x dry_run=true``, nothing lost.

The choice is the same whichever engine autogenerate runs against, so that
one history serves DuckDB (where create_copy_swap rebuilds) and PostgreSQL
(where it alters in place): a revision generated against either runs on both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.schema import ColumnCollectionConstraint
from sqlalchemy.sql.elements import conv

from egregora.database.migration.capabilities import (
    TableTraits,
    duckdb_can_alter,
    traits_from_table,
)
from egregora.database.migration.catalog import (
    canonical_check_expressions,
    reflect,
)
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.definitions import all_checks, fk_signature, referred_table
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.sqltext import normalize_sql

log = logging.getLogger("alembic.egregora.autogenerate")


def rewrite_operations(
    impl: EgregoraImpl, metadata: sa.MetaData, operations: list[ops.MigrateOperation]
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """(upgrade, downgrade) operations, each table's merged into a create_copy_swap where needed.

    The upgrade is judged against the database as it is, the downgrade (the
    reversed operations) against the target metadata: adding a nullable
    column is plain both ways, adding a CHECK is a create_copy_swap both ways.
    """
    existing = set(sa.inspect(impl.conn).get_table_names())
    upgrade: list[ops.MigrateOperation] = []
    downgrade: list[ops.MigrateOperation] = []
    for op in parents_first(metadata, operations):
        if isinstance(op, ops.CreateTableOp):
            op = with_column_checks(op)
        if not isinstance(op, ops.ModifyTableOps) or op.table_name not in existing:
            # new tables (and their indexes) are empty: plain is safe both ways
            upgrade.append(op)
            downgrade.insert(0, op.reverse())
            continue
        up = copy_swap_reason(op, impl.table_traits(op.table_name))
        down = copy_swap_reason(op.reverse(), _metadata_traits(metadata, op.table_name))
        swap = copy_swap_for(impl, metadata, op) if up or down else None
        if swap is not None:
            log.info(
                "%s: create_copy_swap (upgrade: %s; downgrade: %s)",
                op.table_name,
                up or "plain",
                down or "plain",
            )
        upgrade.append(swap if up and swap is not None else op)
        # a rebuilt table goes back by a rebuild, which also restores its column order
        downgrade.insert(0, swap.reverse() if swap is not None else op.reverse())
    return upgrade, downgrade


def with_column_checks(op: ops.CreateTableOp) -> ops.CreateTableOp:
    """``op.create_table`` with its columns' CHECKs written as table-level ones.

    Alembic renders a column without the constraints declared on it, so a
    CHECK declared on a column would be left out of the revision.
    """
    columns = [c for c in op.columns if isinstance(c, sa.Column)]
    hoisted = [
        sa.CheckConstraint(check.sqltext, name=check.name)
        for column in columns
        for check in column.constraints
        if isinstance(check, sa.CheckConstraint)
    ]
    op.columns = [*op.columns, *hoisted]
    return op


def copy_swap_reason(table_ops: ops.ModifyTableOps, traits: TableTraits) -> str | None:
    """Why this table's changes need a create_copy_swap, or None when plain ops do."""
    for op in _flatten(table_ops.ops):
        reason = trips_on_data(op)
        if reason is not None:
            return reason
        can, why = duckdb_can_alter(op, traits)
        if not can:
            return why
    return None


def trips_on_data(op: ops.MigrateOperation) -> str | None:
    """Why a plain operation could fail on rows already in the table, or None.

    These are the changes whose violations the project promises to name
    before any change, quarantine on request and rehearse in a dry run: only
    create_copy_swap does that, so they never stay plain.
    """
    if isinstance(op, ops.AddColumnOp):
        column = op.column
        if column.foreign_keys or [c for c in column.constraints if isinstance(c, sa.Constraint)]:
            return f"the new column {column.name} brings a CHECK or FOREIGN KEY"
        if column.primary_key or column.unique:
            return f"the new column {column.name} is a key"
        if not column.nullable and column.server_default is None:
            return f"the new column {column.name} is NOT NULL without a default"
        return None
    if isinstance(op, ops.AlterColumnOp):
        if op.modify_nullable is False:
            return f"{op.column_name} becomes NOT NULL"
        if op.modify_type is not None:
            return f"{op.column_name} changes type"
        return None
    if isinstance(op, ops.CreateIndexOp) and op.unique:
        return f"the UNIQUE index {op.index_name}"
    if isinstance(op, ops.AddConstraintOp):
        return f"a new {op.constraint_type or 'constraint'}"
    return None


def copy_swap_for(
    impl: EgregoraImpl, metadata: sa.MetaData, table_ops: ops.ModifyTableOps
) -> CreateCopySwapOp:
    """One create_copy_swap: the metadata's table, the database's as ``previous``."""
    name, connection = table_ops.table_name, impl.conn
    target = metadata.tables[name].to_metadata(sa.MetaData())
    previous = reflect(connection, name)
    if not impl.keeps_constraint_names:
        previous = named_like(previous, target, connection.dialect, metadata)
    # Only the schema's own tables are frozen into the revision: offline
    # (--sql) a fresh database has no other; online every referencing table,
    # another store's too, is read from the live catalog when the revision runs.
    dependents = [
        _portable(reflect(connection, d), impl.keeps_constraint_names)
        for d in impl.catalog(connection).referencing(name)
        if d in metadata.tables
    ]
    return CreateCopySwapOp(target, previous=previous, dependents=dependents)


def named_like(
    previous: sa.Table, target: sa.Table, dialect: sa.Dialect, metadata: sa.MetaData
) -> sa.Table:
    """``previous``, reflected from a database that forgets constraint names, named as the
    history names them.

    PostgreSQL keeps names, and the in-place plan matches constraints by name,
    so a revision's ``previous=`` must carry the names the database has.
    Reflected from PostgreSQL they are exact. DuckDB forgets them (it stores
    ``<table>_<col>_check`` and friends), so there each constraint takes the
    name of the target's constraint it equals (CHECKs by DuckDB's spelling of
    their expression), else the naming convention's; a CHECK that the target
    drops and whose name nothing tells stays unnamed (the in-place plan then
    drops it by what it is not: every CHECK the target does not name).
    """
    by_expression = {
        expression: check.name for check, expression in canonical_check_expressions(target, dialect)
    }
    for check in all_checks(previous):
        check.name = by_expression.get(normalize_sql(str(check.sqltext)))
    target_fks = {fk_signature(fk): fk.name for fk in target.foreign_key_constraints}
    for fk in previous.foreign_key_constraints:
        fk.name = target_fks.get(fk_signature(fk)) or conv(_convention_name(fk, metadata))
    for constraint in previous.constraints:
        keyed = (sa.UniqueConstraint, sa.PrimaryKeyConstraint)
        if isinstance(constraint, keyed) and constraint.columns:
            constraint.name = conv(_convention_name(constraint, metadata))
    return previous


def _convention_name(constraint: ColumnCollectionConstraint, metadata: sa.MetaData) -> str:
    """The name the metadata's naming convention gives ``constraint``'s kind and columns."""
    columns = [c.name for c in constraint.columns]
    table = str(constraint.table.name)
    values = {
        "table_name": table,
        "column_0_N_name": "_".join(columns),
        "column_0_name": columns[0] if columns else "",
    }
    if isinstance(constraint, sa.ForeignKeyConstraint):
        key, values["referred_table_name"] = "fk", referred_table(constraint)
    elif isinstance(constraint, sa.PrimaryKeyConstraint):
        key = "pk"
    else:
        key = "uq"
    pattern = metadata.naming_convention.get(key)
    if not isinstance(pattern, str):
        return f"{key}_{table}_{values['column_0_N_name']}"
    return pattern % values


def _portable(table: sa.Table, real_names: bool) -> sa.Table:
    """A reflected table without the constraint names DuckDB makes up (PostgreSQL's are real)."""
    if real_names:
        return table
    for constraint in table.constraints:
        if isinstance(constraint, (sa.CheckConstraint, sa.ForeignKeyConstraint)):
            constraint.name = None
    return table


def parents_first(
    metadata: sa.MetaData, operations: list[ops.MigrateOperation]
) -> list[ops.MigrateOperation]:
    """The per-table operations reordered so referenced tables come first.

    A rebuild of a parent recreates its children as they are before the
    revision; it must therefore run before the children's own changes, and
    after them on the way down.
    """
    order = {table.name: i for i, table in enumerate(metadata.sorted_tables)}
    slots = [i for i, op in enumerate(operations) if isinstance(op, ops.ModifyTableOps)]
    modified = [op for op in operations if isinstance(op, ops.ModifyTableOps)]
    tables = sorted(modified, key=lambda op: order.get(op.table_name, len(order)))
    result = list(operations)
    for slot, op in zip(slots, tables, strict=True):
        result[slot] = op
    return result


def _metadata_traits(metadata: sa.MetaData, name: str) -> TableTraits:
    """The table as the metadata defines it: the state a downgrade starts from."""
    table = metadata.tables.get(name)
    if table is None:
        return traits_from_table(sa.Table(name, sa.MetaData()), False)
    referenced = any(
        fk.referred_table is table
        for other in metadata.tables.values()
        if other is not table
        for fk in other.foreign_key_constraints
    )
    return traits_from_table(table, referenced)


def _flatten(operations: Iterable[ops.MigrateOperation]) -> Iterable[ops.MigrateOperation]:
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from _flatten(op.ops)
        else:
            yield op
