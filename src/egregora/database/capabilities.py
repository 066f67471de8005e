"""PROVISIONAL (replaced by the measured table)."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops


@dataclass(frozen=True)
class TableTraits:
    referenced: bool
    indexed_columns: frozenset[str]
    column_order: tuple[str, ...]
    keyed: frozenset[str]
    has_pk: bool
    has_fk: bool
    has_unique: bool
    viewed: bool = False

def traits_from_table(table: sa.Table, referenced: bool) -> TableTraits:
    keyed = {c.name for con in table.constraints if isinstance(con, (sa.PrimaryKeyConstraint, sa.UniqueConstraint, sa.ForeignKeyConstraint)) for c in con.columns}
    return TableTraits(referenced, frozenset(c.name for i in table.indexes for c in i.columns), tuple(table.columns.keys()), frozenset(keyed), bool(table.primary_key.columns), bool(table.foreign_key_constraints), any(isinstance(c, sa.UniqueConstraint) for c in table.constraints))

def duckdb_can_alter(op, traits):
    if isinstance(op, (ops.CreateTableCommentOp, ops.DropTableCommentOp, ops.CreateIndexOp, ops.DropIndexOp)):
        return True, ""
    if isinstance(op, ops.AddColumnOp):
        if not op.column.nullable and (traits.referenced or traits.indexed_columns):
            return False, "NOT NULL add on referenced/indexed"
        return True, ""
    if traits.referenced or traits.indexed_columns:
        return False, "referenced or indexed"
    if isinstance(op, ops.AddConstraintOp):
        return op.constraint_type in ("unique", "primarykey"), "constraint"
    if isinstance(op, ops.DropConstraintOp):
        return False, "drop constraint"
    if isinstance(op, ops.AlterColumnOp):
        return not (op.modify_type is not None and op.column_name in traits.keyed), "keyed type"
    if isinstance(op, ops.DropColumnOp):
        return op.column_name not in traits.keyed, "keyed drop"
    return False, "unknown"
