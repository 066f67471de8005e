"""Alembic's own operations, written by hand, run as a rebuild where they must (issue 27).

An engine's impl calls :func:`as_rebuild` for an operation it can't ALTER in
place (DuckDB) or that existing rows can break (both engines): the table as
the run holds it now, changed by the operation (:mod:`.opchange`), becomes a
:class:`~.copyswap.model.Change` and takes ``create_copy_swap``'s road
(:func:`.copyswap.rebuild.apply`): preflight naming rows by key,
``-x on_violation=quarantine``, dry run and ``-x report``, dependents
carried, fusion with the run's other rebuilds of the table. Offline
(``--sql``) nothing can be read: the table's definition comes from
``op.batch_alter_table(..., copy_from=...)``, else the operation is refused
naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.schema import CreateIndex, CreateTable, DropTable

from egregora.database.migration.copyswap.model import Change
from egregora.database.migration.copyswap.rebuild import apply, current_definition, rebuild
from egregora.database.migration.copyswap.script import write_script
from egregora.database.migration.definitions import referred_columns, referred_table
from egregora.database.migration.errors import InvalidOperation, failing_as
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.opchange import changed, changed_by_all, references_renamed
from egregora.database.migration.runstate import current_revision

__all__ = [
    "HandWrittenOps",
    "renamed_by_copy",
    "as_rebuild",
    "batch_operation",
    "describe",
    "held_target",
    "table_now",
]


def describe(operations: Sequence[ops.MigrateOperation]) -> str:
    """``add_column``, ``alter_column``...: the operations as a revision spells them."""
    names = [_SPELLED.get(type(op), type(op).__name__) for op in operations]
    return ", ".join(dict.fromkeys(names))


_SPELLED: dict[type[ops.MigrateOperation], str] = {
    ops.AddColumnOp: "add_column",
    ops.DropColumnOp: "drop_column",
    ops.AlterColumnOp: "alter_column",
    ops.CreateCheckConstraintOp: "create_check_constraint",
    ops.CreateForeignKeyOp: "create_foreign_key",
    ops.CreateUniqueConstraintOp: "create_unique_constraint",
    ops.CreatePrimaryKeyOp: "create_primary_key",
    ops.AddConstraintOp: "add_constraint",
    ops.DropConstraintOp: "drop_constraint",
    ops.CreateIndexOp: "create_index",
    ops.DropIndexOp: "drop_index",
    ops.RenameTableOp: "rename_table",
}


def held_target(impl: EgregoraImpl, name: str) -> sa.Table | None:
    """The table as the run's held rebuilds will leave it (DuckDB), if any are held."""
    held = impl.run.held
    return None if held is None else held.pending(name)


def table_now(impl: EgregoraImpl, name: str) -> sa.Table:
    """The table as the run has it now: held rebuilds' target, else as the database holds it."""
    pending = held_target(impl, name)
    if pending is not None:
        return pending
    held = impl.run.held
    if held is not None:  # reading one table's definition is no barrier for the others
        with held.own():
            return _reflected(impl, name)
    return _reflected(impl, name)


def _reflected(impl: EgregoraImpl, name: str) -> sa.Table:
    existing, _ = impl.catalog(impl.conn).tables_and_views()
    if name not in existing:
        raise InvalidOperation(
            f"Table {name!r} does not exist in this database (it has "
            f"{', '.join(sorted(existing)) or 'no tables'}). Nothing was changed; check the "
            "revision's table name, or create the table first (op.create_table)."
        )
    return impl.definition_of(name)


def as_rebuild(
    impl: EgregoraImpl,
    name: str,
    operations: Sequence[ops.MigrateOperation],
    copy_from: sa.Table | None = None,
) -> None:
    """Run ``operations`` on table ``name`` as one rebuild (create_copy_swap's road)."""
    what = f"{describe(operations)} on {name}"
    revision, mode = current_revision(), impl.run.mode(None)
    if impl.as_sql:
        if copy_from is None:
            raise InvalidOperation(
                f"{what}: offline (--sql) this operation rebuilds the table, and the "
                "table can't be read without a database. Nothing was written. Write it "
                f"inside `with op.batch_alter_table({name!r}, copy_from=<the table's current "
                "sa.Table definition>) as batch_op:`, or run it online."
            )
        target, column_map = changed_by_all(copy_from, operations)
        change = Change(target, column_map, copy_from, (), revision, mode, impl.run.policy)
        write_script(impl, change)
        return
    with failing_as(f"{what} failed"):
        previous = table_now(impl, name)
        target, column_map = changed_by_all(previous, operations)
        apply(impl, Change(target, column_map, None, (), revision, mode, impl.run.policy))


def renamed_by_copy(impl: EgregoraImpl, old: str, new: str) -> None:
    """Rename ``old`` to ``new`` where the engine can't: a copy, its references moved, a drop.

    DuckDB renames no table with a key, an index, or a FOREIGN KEY into it.
    The table is created anew under ``new`` (its keys in CREATE TABLE, its
    indexes after), its rows copied; each table that references it is
    rebuilt (create_copy_swap's road) with its FOREIGN KEYs pointing at
    ``new``; then ``old`` is dropped, and its indexes built on ``new``. In
    the run's transaction: a failure or a dry run leaves everything as it
    was. A view or macro that reads ``old`` is refused first (DuckDB binds
    it by name).
    """
    what = f"rename_table {old} to {new}"
    with failing_as(f"{what} failed"):
        previous = table_now(impl, old)
        for kind, name, _used in impl.readers_of(old, previous.columns.keys())[:1]:
            raise InvalidOperation(
                f"{what}: the {kind} {name} reads {old}, and DuckDB binds it by name, so it "
                f"would break. Nothing was changed. Drop the {kind} earlier in the revision "
                f"(op.execute), rename the table, then create it again over {new}."
            )
        target, _ = changed(previous, ops.RenameTableOp(old, new))
        direct = [
            d
            for d in impl.dependents(old)
            if any(referred_table(fk) == old for fk in d.foreign_key_constraints)
        ]
        connection = impl.conn
        _stub_referenced(target)
        connection.execute(CreateTable(target))
        columns = ", ".join(impl.quote(c.name) for c in previous.columns if c.computed is None)
        connection.exec_driver_sql(
            f"INSERT INTO {impl.quote(new)} ({columns}) SELECT {columns} FROM {impl.quote(old)}"
        )
        revision, mode = current_revision(), impl.run.mode(None)
        for dependent in direct:
            moved = references_renamed(dependent, old, new)
            change = Change(moved, {}, None, (), revision, mode, impl.run.policy)
            impl.record_constraint_names(moved)
            rebuild(impl, [change.at(current_definition(impl, change))])
        connection.execute(DropTable(previous))
        for index in target.indexes:  # index names are the schema's: built once the old go
            connection.execute(CreateIndex(index))


def _stub_referenced(table: sa.Table) -> None:
    """The tables ``table``'s FOREIGN KEYs reference, as stubs in its MetaData, to compile it."""
    for fk in table.foreign_key_constraints:
        name = referred_table(fk)
        if name in table.metadata.tables:
            continue
        columns = zip(fk.columns, referred_columns(fk), strict=True)
        sa.Table(name, table.metadata, *(sa.Column(r, c.type) for c, r in columns))


# -- the impl's side: Alembic's calls, as operations --------------------------------------


def batch_operation(table: str, opname: str, arg: Sequence[Any], kw: dict[str, Any]) -> Any:
    """One entry of Alembic's batch (``(opname, args, kwargs)`` of an impl call) as an op."""
    return _CALLS[opname](table, *arg, **kw)


def _alter(table: str, _table: str, column_name: str, **kw: Any) -> ops.AlterColumnOp:
    return ops.AlterColumnOp(
        table,
        column_name,
        modify_nullable=kw.get("nullable"),
        modify_server_default=kw.get("server_default", False),
        modify_name=kw.get("name"),
        modify_type=kw.get("type_"),
        modify_comment=kw.get("comment", False),
        existing_type=kw.get("existing_type"),
        existing_server_default=kw.get("existing_server_default", False),
        existing_nullable=kw.get("existing_nullable"),
        existing_comment=kw.get("existing_comment"),
    )


_CALLS: dict[str, Callable[..., ops.MigrateOperation]] = {
    "alter_column": _alter,
    "add_column": lambda table, _t, column, **kw: ops.AddColumnOp(table, column),
    "drop_column": lambda table, _t, column, **kw: ops.DropColumnOp(table, column.name),
    "add_constraint": lambda table, const, **kw: ops.AddConstraintOp.from_constraint(const),
    "drop_constraint": lambda table, const, **kw: dropped(const),
    "create_index": lambda table, index, **kw: ops.CreateIndexOp.from_index(index),
    "drop_index": lambda table, index, **kw: ops.DropIndexOp.from_index(index),
    "rename_table": lambda table, old, new, **kw: ops.RenameTableOp(old, new),
    "create_table_comment": lambda table, t, **kw: ops.CreateTableCommentOp(table, t.comment),
    "drop_table_comment": lambda table, t, **kw: ops.DropTableCommentOp(table),
}


def dropped(const: sa.Constraint) -> ops.DropConstraintOp:
    """The drop of ``const``, by name and kind (Alembic's own reads columns a name has not)."""
    kind = next((k for k, t in _TYPES.items() if isinstance(const, t)), None)
    return ops.DropConstraintOp(str(const.name), const.table.name, type_=kind)


_TYPES: dict[str, type[sa.Constraint]] = {
    "foreignkey": sa.ForeignKeyConstraint,
    "primary": sa.PrimaryKeyConstraint,
    "unique": sa.UniqueConstraint,
    "check": sa.CheckConstraint,
}


class HandWrittenOps(EgregoraImpl):
    """Alembic's plain operations on an impl: in place, or as one rebuild (``as_rebuild``).

    Each engine's impl derives from this one; the engine says which
    operations need a rebuild (``needs_rebuild``) and which constraint a
    name a revision drops means (``resolved``).
    """

    def needs_rebuild(self, table: str, op: ops.MigrateOperation) -> bool:
        """Whether ``op`` on ``table`` runs as a rebuild (the engine's answer)."""
        raise NotImplementedError

    def resolved(self, op: ops.DropConstraintOp) -> ops.DropConstraintOp:
        """The drop of the constraint ``op``'s name means (the name as given, by default)."""
        return op

    def _plain(self, schema: str | None, table: str, op: Any, native: Callable[[], None]) -> None:
        """``op``: in place (``native``), or as a rebuild."""
        if schema is not None or self.run.own_statements:
            native()  # another schema is not this one's; our own DDL is as planned
            return
        if isinstance(op, ops.DropConstraintOp):
            op = self.resolved(op)
        if self.needs_rebuild(table, op):
            as_rebuild(self, table, [op])
            return
        with failing_as(f"{describe([op])} on {table} failed"):
            native()

    def add_column(
        self, table_name: str, column: Any, schema: str | None = None, **kw: Any
    ) -> None:
        op = ops.AddColumnOp(table_name, column, schema=schema)
        self._plain(
            schema,
            table_name,
            op,
            lambda: super(HandWrittenOps, self).add_column(table_name, column, schema=schema, **kw),
        )

    def drop_column(
        self, table_name: str, column: Any, schema: str | None = None, **kw: Any
    ) -> None:
        op = ops.DropColumnOp(table_name, column.name, schema=schema)
        self._plain(
            schema,
            table_name,
            op,
            lambda: super(HandWrittenOps, self).drop_column(
                table_name, column, schema=schema, **kw
            ),
        )

    def renaming_in_place(self, table: str) -> contextlib.AbstractContextManager[None]:
        """Around a column renamed in place: what the engine keeps by name follows (nothing)."""
        return contextlib.nullcontext()

    def alter_column(self, table_name: str, column_name: str, **kw: Any) -> None:
        op = _alter(table_name, table_name, column_name, **kw)
        renames = kw.get("name") is not None and not self.as_sql  # the new name

        def native() -> None:
            with self.renaming_in_place(table_name) if renames else contextlib.nullcontext():
                super(HandWrittenOps, self).alter_column(table_name, column_name, **kw)

        self._plain(kw.get("schema"), table_name, op, native)

    def add_constraint(self, const: Any, **kw: Any) -> None:
        op = ops.AddConstraintOp.from_constraint(const)
        table = const.table
        self._plain(
            table.schema,
            table.name,
            op,
            lambda: super(HandWrittenOps, self).add_constraint(const, **kw),
        )

    def drop_constraint(self, const: Any, **kw: Any) -> None:
        op = dropped(const)
        table = const.table
        self._plain(
            table.schema,
            table.name,
            op,
            lambda: super(HandWrittenOps, self).drop_constraint(const, **kw),
        )

    def create_index(self, index: Any, **kw: Any) -> None:
        op = ops.CreateIndexOp.from_index(index)
        table = index.table
        self._plain(
            table.schema,
            table.name,
            op,
            lambda: super(HandWrittenOps, self).create_index(index, **kw),
        )

    def requires_recreate_in_batch(self, batch_op: Any) -> bool:
        """Alembic's batch: its operations collected into one rebuild, when one needs it.

        Alembic then runs nothing of its own (its recreate copies from
        SQLAlchemy's reflection, which leaves CHECKs out and checks no row).
        """
        table = batch_op.table_name
        operations = [batch_operation(table, n, a, k) for n, a, k in batch_op.batch]
        operations = [
            self.resolved(o) if isinstance(o, ops.DropConstraintOp) else o for o in operations
        ]
        if batch_op.schema is not None or not any(self.needs_rebuild(table, o) for o in operations):
            return False
        as_rebuild(self, table, operations, batch_op.copy_from)
        batch_op.batch = []
        return False

    def prep_table_for_batch(self, batch_impl: Any, table: Any) -> None:
        raise InvalidOperation(
            f"batch_alter_table({table.name!r}, recreate='always') copies the table through "
            "SQLAlchemy's reflection, which loses CHECKs and checks no row. Nothing was "
            "changed. Leave recreate at its default ('auto'): the batch's operations then "
            "run as one rebuild that keeps every constraint and names the rows that break one."
        )
