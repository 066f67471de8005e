"""An Alembic operation applied to a table definition: the target a rebuild writes.

Where an engine can't run one of Alembic's own operations in place (DuckDB's
ALTER, :mod:`.capabilities`), or where existing rows could break it, the
operation becomes a ``create_copy_swap``: the table as found, changed by the
operation. :func:`changed` is that change, pure: a copy of ``table`` with
``op`` applied, and the ``column_map`` that carries renamed columns' values.
Django's SQLite schema editor does the same (``_remake_table``); Alembic's
batch mode too (``ApplyBatchImpl``), which leaves reflected CHECKs out: here
every column, default, comment, key, CHECK and index is kept unless the
operation changes it.

The operations are Alembic's own op objects (``alembic.operations.ops``), as
its impl receives them: ``add_column`` with the column alone (Alembic adds
the column's FOREIGN KEY, UNIQUE and index as operations of their own), and
``drop_constraint`` naming a constraint the table holds under that name (on
DuckDB the impl resolves a name first: :mod:`.names`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from egregora.database.migration.copyswap.model import ColumnMapValue
from egregora.database.migration.definitions import plain_column
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sqltext import identifiers

__all__ = ["Draft", "changed", "changed_by_all", "references_renamed", "rows_can_break"]


@dataclass
class Draft:
    """A table definition being changed: its parts, each detached from any table."""

    name: str
    columns: list[sa.Column[Any]]
    constraints: list[sa.Constraint]
    indexes: list[sa.Index]
    comment: str | None = None
    column_map: dict[str, ColumnMapValue] = field(default_factory=dict)

    @classmethod
    def of(cls, table: sa.Table) -> Draft:
        draft = cls(table.name, [_column(c) for c in table.columns], [], [], table.comment)
        draft.constraints = [
            copied
            for c in table.constraints
            if (copied := _constraint(c, table.name, table.name)) is not None
        ]
        draft.constraints += [
            _check(c)
            for column in table.columns
            for c in column.constraints
            if isinstance(c, sa.CheckConstraint) and c not in table.constraints
        ]
        draft.indexes = [i for i in (_index(x) for x in table.indexes) if i is not None]
        draft.column_map = {c.name: sa.column(c.name) for c in table.columns}
        return draft

    def table(self) -> sa.Table:
        """The definition as a table of its own (in a MetaData of its own)."""
        return sa.Table(
            self.name,
            sa.MetaData(),
            *self.columns,
            *self.constraints,
            *self.indexes,
            comment=self.comment,
        )

    def renames(self) -> dict[str, ColumnMapValue]:
        """The column_map of the change: only the columns that come from another name."""
        return {new: value for new, value in self.column_map.items() if plain_column(value) != new}

    def find(self, name: str) -> sa.Column[Any]:
        for column in self.columns:
            if column.name == name:
                return column
        raise InvalidOperation(
            f"Table {self.name} has no column {name} (it has "
            f"{', '.join(c.name for c in self.columns)}). Nothing was changed; check the "
            "revision's column name."
        )


def changed(
    table: sa.Table, op: ops.MigrateOperation
) -> tuple[sa.Table, dict[str, ColumnMapValue]]:
    """``table`` changed by ``op``, and the column_map of renamed columns."""
    return changed_by_all(table, [op])


def changed_by_all(
    table: sa.Table, operations: Sequence[ops.MigrateOperation]
) -> tuple[sa.Table, dict[str, ColumnMapValue]]:
    """``table`` changed by each of ``operations`` in turn (a batch): one target, one map."""
    draft = Draft.of(table)
    for op in operations:
        apply(draft, op)
    return draft.table(), draft.renames()


def references_renamed(table: sa.Table, old: str, new: str) -> sa.Table:
    """``table`` with its FOREIGN KEYs into table ``old`` pointing at ``new`` instead."""
    draft = Draft.of(table)
    draft.constraints = [_retargeted(c, old, new) for c in draft.constraints]
    return draft.table()


def apply(draft: Draft, op: ops.MigrateOperation) -> None:
    """Change ``draft`` by one operation (refused in one paragraph when it can't)."""
    for kind, handler in _HANDLERS:
        if isinstance(op, kind):
            handler(draft, op)
            return
    raise InvalidOperation(
        f"{type(op).__name__} on {draft.name} can't be written as a rebuild of the table. "
        "Nothing was changed; write it as op.create_copy_swap with the table's new definition."
    )


def rows_can_break(op: ops.MigrateOperation) -> bool:
    """Whether rows the table already holds can break ``op`` (so they are checked first).

    NOT NULL, a type, UNIQUE, PRIMARY KEY, CHECK, FOREIGN KEY, a unique index,
    and a new column that comes with a constraint or without a value.
    """
    if isinstance(op, ops.ModifyTableOps):
        return any(rows_can_break(sub) for sub in op.ops)
    if isinstance(op, ops.AlterColumnOp):
        return op.modify_nullable is False or op.modify_type is not None
    if isinstance(op, ops.AddConstraintOp):
        return True
    if isinstance(op, ops.CreateIndexOp):
        return bool(op.unique)
    if isinstance(op, ops.AddColumnOp):
        column = op.column
        checked = any(isinstance(c, sa.CheckConstraint) for c in column.constraints)
        unfilled = not column.nullable and column.server_default is None
        return checked or unfilled or column.unique is True or bool(column.foreign_keys)
    return False


# -- the operations ------------------------------------------------------------------


def _add_column(draft: Draft, op: ops.AddColumnOp) -> None:
    column = op.column
    if any(c.name == column.name for c in draft.columns):
        raise InvalidOperation(
            f"add_column: table {draft.name} has a column {column.name} already. Nothing "
            "was changed; drop it first, or alter it (op.alter_column)."
        )
    draft.columns.append(_column(column))
    draft.constraints += [
        _check(c) for c in column.constraints if isinstance(c, sa.CheckConstraint)
    ]
    if column.primary_key:
        draft.constraints = [
            c for c in draft.constraints if not isinstance(c, sa.PrimaryKeyConstraint)
        ]
        draft.constraints.append(sa.PrimaryKeyConstraint(column.name))


def _drop_column(draft: Draft, op: ops.DropColumnOp) -> None:
    """As PostgreSQL's DROP COLUMN: the keys, CHECKs and indexes that read it go with it."""
    name = op.column_name
    draft.find(name)
    draft.columns = [c for c in draft.columns if c.name != name]
    draft.constraints = [c for c in draft.constraints if not _reads_column(_reads(c), name)]
    draft.indexes = [i for i in draft.indexes if not _reads_column(_index_reads(i), name)]
    draft.column_map.pop(name, None)


def _alter_column(draft: Draft, op: ops.AlterColumnOp) -> None:
    old = draft.find(op.column_name)
    column = _column(old)
    if op.modify_nullable is not None:
        column.nullable = op.modify_nullable
    if op.modify_type is not None:
        column.type = op.modify_type
    if op.modify_server_default is not False:
        column.server_default = _default(op.modify_server_default)
    if op.modify_comment is not False:
        column.comment = op.modify_comment
    new_name = op.modify_name or old.name
    if new_name != old.name:
        if any(c.name == new_name for c in draft.columns):
            raise InvalidOperation(
                f"alter_column: table {draft.name} has a column {new_name} already; "
                f"{old.name} can't take its name. Nothing was changed."
            )
        column.name = column.key = new_name
        draft.constraints = [_renamed(c, old.name, new_name) for c in draft.constraints]
        draft.indexes = [_renamed_index(i, old.name, new_name) for i in draft.indexes]
        draft.column_map = {
            (new_name if k == old.name else k): v for k, v in draft.column_map.items()
        }
    draft.columns = [column if c is old else c for c in draft.columns]


def _add_constraint(draft: Draft, op: ops.AddConstraintOp) -> None:
    constraint = op.to_constraint()
    copied = _constraint(constraint, draft.name, draft.name)
    if copied is None:
        raise InvalidOperation(
            f"{type(op).__name__} on {draft.name}: a constraint without columns. Nothing "
            "was changed; name the columns it constrains."
        )
    if not isinstance(copied, sa.CheckConstraint):  # a CHECK's text reads functions too
        for name in _reads(copied):
            draft.find(name)
    if isinstance(copied, sa.PrimaryKeyConstraint):
        if any(isinstance(c, sa.PrimaryKeyConstraint) for c in draft.constraints):
            raise InvalidOperation(
                f"create_primary_key on {draft.name}: the table has a PRIMARY KEY already. "
                "Nothing was changed; drop it first (op.drop_constraint(..., type_='primary'))."
            )
        for column in draft.columns:  # a key's columns are NOT NULL
            if column.name in _reads(copied):
                column.nullable = False
    draft.constraints.append(copied)


def _drop_constraint(draft: Draft, op: ops.DropConstraintOp) -> None:
    kinds = _KINDS.get(op.constraint_type or "", sa.Constraint)
    found = [
        c
        for c in draft.constraints
        if isinstance(c, kinds) and c.name is not None and str(c.name) == op.constraint_name
    ]
    if not found:
        held = "; ".join(f"{type(c).__name__} {c.name}" for c in draft.constraints if c.name)
        raise InvalidOperation(
            f"No constraint of table {draft.name} is named {op.constraint_name} "
            f"(it has: {held or 'none with a name'}). Nothing was changed; name one of these."
        )
    draft.constraints = [c for c in draft.constraints if c is not found[0]]


def _create_index(draft: Draft, op: ops.CreateIndexOp) -> None:
    index = op.to_index()
    if any(i.name == index.name for i in draft.indexes):
        raise InvalidOperation(
            f"create_index: table {draft.name} has an index {index.name} already. "
            "Nothing was changed."
        )
    copied = _index(index)
    assert copied is not None
    draft.indexes.append(copied)


def _drop_index(draft: Draft, op: ops.DropIndexOp) -> None:
    draft.indexes = [i for i in draft.indexes if i.name != op.index_name]


def _rename_table(draft: Draft, op: ops.RenameTableOp) -> None:
    old, new = draft.name, op.new_table_name
    draft.name = new
    draft.constraints = [_retargeted(c, old, new) for c in draft.constraints]


def _table_comment(draft: Draft, op: ops.CreateTableCommentOp | ops.DropTableCommentOp) -> None:
    draft.comment = op.comment if isinstance(op, ops.CreateTableCommentOp) else None


_HANDLERS: tuple[tuple[type[Any] | tuple[type[Any], ...], Callable[..., None]], ...] = (
    (ops.AddColumnOp, _add_column),
    (ops.DropColumnOp, _drop_column),
    (ops.AlterColumnOp, _alter_column),
    (ops.AddConstraintOp, _add_constraint),
    (ops.DropConstraintOp, _drop_constraint),
    (ops.CreateIndexOp, _create_index),
    (ops.DropIndexOp, _drop_index),
    (ops.RenameTableOp, _rename_table),
    ((ops.CreateTableCommentOp, ops.DropTableCommentOp), _table_comment),
)

_KINDS: Mapping[str, type[sa.Constraint]] = {
    "check": sa.CheckConstraint,
    "unique": sa.UniqueConstraint,
    "primary": sa.PrimaryKeyConstraint,
    "foreignkey": sa.ForeignKeyConstraint,
}


# -- copies, detached from any table --------------------------------------------------


def _name(constraint: sa.Constraint | sa.Index) -> str | None:
    name = constraint.name
    if name is None or str(name) == "_NONE_NAME":
        return None
    return str(name)


def _default(value: Any) -> Any:
    if value is None or isinstance(value, str | sa.DefaultClause | sa.TextClause):
        if isinstance(value, sa.DefaultClause):
            return sa.DefaultClause(value.arg)
        return value
    return sa.DefaultClause(value)


def _column(column: sa.Column[Any]) -> sa.Column[Any]:
    """The column alone: name, type, nullability, default, comment, generation.

    Its keys are the table's constraints (copied with them); a column added by
    Alembic's ``add_column`` gets its FOREIGN KEY, UNIQUE and index as
    operations of their own.
    """
    args: list[Any] = []
    if column.computed is not None:
        args.append(sa.Computed(column.computed.sqltext, persisted=column.computed.persisted))
    server_default = column.server_default if column.computed is None else None
    return sa.Column(
        column.name,
        column.type,
        *args,
        nullable=column.nullable,
        server_default=_default(server_default),
        comment=column.comment,
        autoincrement=False,
    )


def _check(check: sa.CheckConstraint) -> sa.CheckConstraint:
    return sa.CheckConstraint(check.sqltext, name=_name(check))


def _constraint(constraint: sa.Constraint, old: str, new: str) -> sa.Constraint | None:
    """A copy naming its columns by name (and ``old`` as ``new`` where it references it)."""
    name = _name(constraint)
    if isinstance(constraint, sa.CheckConstraint):
        return _check(constraint)
    columns = [c.name for c in getattr(constraint, "columns", ())] or list(
        getattr(constraint, "_pending_colargs", ())
    )
    columns = [c if isinstance(c, str) else c.name for c in columns]
    if not columns:
        return None
    if isinstance(constraint, sa.PrimaryKeyConstraint):
        return sa.PrimaryKeyConstraint(*columns, name=name)
    if isinstance(constraint, sa.UniqueConstraint):
        return sa.UniqueConstraint(*columns, name=name)
    if isinstance(constraint, sa.ForeignKeyConstraint):
        parent = constraint.elements[0].target_fullname.rsplit(".", 1)[0]
        refcols = [e.target_fullname.rsplit(".", 1)[-1] for e in constraint.elements]
        return sa.ForeignKeyConstraint(
            columns,
            [f"{new if parent == old else parent}.{c}" for c in refcols],
            name=name,
            ondelete=constraint.ondelete,
            onupdate=constraint.onupdate,
            deferrable=constraint.deferrable,
            initially=constraint.initially,
            match=constraint.match,
        )
    return None


def _index(index: sa.Index) -> sa.Index | None:
    expressions = [
        e.name if isinstance(e, sa.Column | sa.sql.elements.ColumnClause) else e
        for e in index.expressions
    ]
    if not expressions:
        return None
    return sa.Index(_name(index), *expressions, unique=bool(index.unique), **index.kwargs)


def _reads(constraint: sa.Constraint) -> set[str]:
    """The column names a copied constraint reads (a CHECK: the identifiers in its text)."""
    if isinstance(constraint, sa.CheckConstraint):
        names = {
            e.name
            for e in sa.sql.visitors.iterate(constraint.sqltext)
            if isinstance(e, sa.sql.elements.ColumnClause)
        }
        return names | identifiers(str(constraint.sqltext))
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return {str(c) for c in constraint.column_keys}
    return {c if isinstance(c, str) else c.name for c in constraint._pending_colargs}  # type: ignore[attr-defined]


def _reads_column(names: set[str], column: str) -> bool:
    """Whether ``column`` is among ``names`` (a text's identifiers are lower-cased)."""
    return column in names or column.lower() in names


def _index_reads(index: sa.Index) -> set[str]:
    found: set[str] = set()
    for e in index.expressions:
        found |= {e} if isinstance(e, str) else identifiers(str(e))
    return found


def _renamed(constraint: sa.Constraint, old: str, new: str) -> sa.Constraint:
    """``constraint`` reading column ``new`` where it read ``old``."""

    def swap(names: Sequence[str]) -> list[str]:
        return [new if n == old else n for n in names]

    name = _name(constraint)
    if isinstance(constraint, sa.CheckConstraint):
        if not _reads_column(_reads(constraint), old):
            return constraint
        raise InvalidOperation(
            f"alter_column renaming {old} to {new}: the CHECK {name or constraint.sqltext} "
            f"reads {old}. Nothing was changed; drop the CHECK first "
            "(op.drop_constraint), rename the column, then create the CHECK again over "
            f"{new}."
        )
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return sa.ForeignKeyConstraint(
            swap([str(c) for c in constraint.column_keys]),
            [e.target_fullname for e in constraint.elements],
            name=name,
            ondelete=constraint.ondelete,
            onupdate=constraint.onupdate,
            deferrable=constraint.deferrable,
            initially=constraint.initially,
            match=constraint.match,
        )
    columns = swap(_colargs(constraint))
    if isinstance(constraint, sa.PrimaryKeyConstraint):
        return sa.PrimaryKeyConstraint(*columns, name=name)
    return sa.UniqueConstraint(*columns, name=name)


def _colargs(constraint: sa.Constraint) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in constraint._pending_colargs]  # type: ignore[attr-defined]


def _renamed_index(index: sa.Index, old: str, new: str) -> sa.Index:
    expressions = [new if e == old else e for e in index.expressions]
    if any(
        not isinstance(e, str) and _reads_column(_index_reads(sa.Index(None, e)), old)
        for e in expressions
    ):
        raise InvalidOperation(
            f"alter_column renaming {old} to {new}: the index {index.name} reads {old} in an "
            "expression. Nothing was changed; drop the index first (op.drop_index), rename the "
            "column, then create it again."
        )
    return sa.Index(index.name, *expressions, unique=bool(index.unique), **index.kwargs)


def _retargeted(constraint: sa.Constraint, old: str, new: str) -> sa.Constraint:
    """A copied FOREIGN KEY that referenced table ``old`` (itself) now references ``new``."""
    if isinstance(constraint, sa.ForeignKeyConstraint):
        copied = _constraint(constraint, old, new)
        assert copied is not None
        return copied
    return constraint
