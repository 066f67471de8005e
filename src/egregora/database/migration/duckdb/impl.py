"""Alembic's DuckDB implementation, with the quirks this project met handled in one place.

duckdb-sqlalchemy registers ``DuckDBImpl`` for the ``duckdb`` dialect. This
subclass is defined after it, so Alembic uses it instead (Alembic's
implementation registry keeps the last class defined for a dialect).

On DuckDB a ``create_copy_swap`` rebuilds the table and the tables that
reference it: before the change it reads their stored DDL and the table's
undeclared indexes from the catalog, and refuses what would break after the
swap (a view or macro reading a dropped column, a FOREIGN KEY between
columns of different types).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from duckdb_sqlalchemy.alembic_impl import DuckDBImpl

from egregora.database.foreign_keys import enforced_by
from egregora.database.migration.capabilities import (
    PLAIN,
    TableTraits,
    duckdb_can_alter,
    traits_from_database,
)
from egregora.database.migration.catalog import (
    column_collations,
    driver,
    duckdb_type_name,
    renamable,
    scratch_type_name,
    snapshot,
    stored_indexes,
    stored_tables,
)
from egregora.database.migration.copyswap.duckdb import RebuildPlanner
from egregora.database.migration.copyswap.fusion import declared_indexes
from egregora.database.migration.copyswap.model import Change, Facts, Stage
from egregora.database.migration.definitions import (
    fk_signature,
    referred_columns,
    referred_table,
)
from egregora.database.migration.duckdb.catalog import DuckDBCatalog
from egregora.database.migration.duckdb_versions import features
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.fkactions import NOTHING_CHANGED, refuse_on_duckdb
from egregora.database.migration.handops import HandWrittenOps, held_target, renamed_by_copy
from egregora.database.migration.namerecord import keep_names, names_kept, resolve_constraint
from egregora.database.migration.opchange import rows_can_break
from egregora.database.migration.options import RunOptions
from egregora.database.migration.readers import Readers, duckdb_readers
from egregora.database.migration.runstate import RunState
from egregora.database.migration.sqltext import identifiers

__all__ = ["EgregoraDuckDBImpl"]


class EgregoraDuckDBImpl(HandWrittenOps, DuckDBImpl):
    __dialect__ = "duckdb"
    planner = RebuildPlanner
    in_place = False
    # each rebuild writes the whole table: a run writes each table once
    holds_rebuilds = True
    # stored as <table>_<cols>_check and friends; the stored DDL has no names
    keeps_constraint_names = False
    catalog = DuckDBCatalog

    @classmethod
    def prepare(cls, connection: sa.Connection, options: RunOptions, run: RunState) -> None:
        """DuckDB's progress bar on a terminal only, and the memory limit; remember it.

        DuckDB prints its own progress bar (percent and a bar) to stdout for
        queries that run longer than progress_bar_time, and does so by
        default even into pipes and CI logs. Shown on a terminal only, after
        two seconds (``-x progress_after_ms=N``). Neither setting can be
        global: both are set on the driver's connection, the one every
        statement of the run goes through. Setting progress_bar_time switches
        the bar on, so it goes first.
        """
        raw = driver(connection)
        if sys.stdout.isatty():
            raw.execute(f"SET progress_bar_time = {options.progress_after_ms}")
            raw.execute("SET enable_progress_bar = true")
        else:
            raw.execute("SET enable_progress_bar = false")
        if options.memory_limit is not None:  # checked: a number and a unit
            raw.execute(f"SET memory_limit = '{options.memory_limit}'")
        row = raw.execute("SELECT current_setting('memory_limit')").fetchone()
        run.memory_limit = str(row[0]) if row else "unknown"  # for an out-of-memory refusal
        connection.commit()  # end the autobegun transaction: Alembic begins its own

    def table_traits(self, name: str) -> TableTraits:
        return traits_from_database(self.conn, name)

    def read_facts(
        self, stages: Sequence[Stage], dependents: Sequence[sa.Table], inline_keys: bool
    ) -> Facts:
        """Dependents come back exactly as the catalog keeps them, now."""
        raw = driver(self.conn)
        return Facts(
            dependents=tuple(dependents),
            stored=stored_tables(raw, [d.name for d in dependents]),
            kept_indexes=tuple(kept_indexes(raw, stages)),
            renamable=renamable(raw, stages[0].table),
            inline_keys=inline_keys,
        )

    def refuse_before_change(
        self, previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]
    ) -> None:
        refuse_breaking_readers(driver(self.conn), previous, target)
        refuse_incompatible_references(self.conn, target, dependents)

    def refuse_foreign_key_options(self, tables: Iterable[sa.Table], outcome: str) -> None:
        # its parser refuses CASCADE, SET NULL, SET DEFAULT, DEFERRABLE... (fkactions.py)
        refuse_on_duckdb(tables, outcome)

    def create_table(self, table: Any, **kw: Any) -> None:
        # refused in one paragraph before the statement, online and as --sql,
        # instead of DuckDB's Parser Error (fkactions.py)
        refuse_on_duckdb([table], NOTHING_CHANGED)
        super().create_table(table, **kw)

    @contextlib.contextmanager
    def renaming_in_place(self, table: str) -> Iterator[None]:
        # DuckDB rewrites the renamed column into the CHECKs and keys, and forgets their
        # names: one given by the history or the convention over the old column would
        # answer to another name after (chk_profiles_title_not_empty became
        # chk_profiles_display_name), so each is recorded under the one it had
        with names_kept(driver(self.conn), table):
            yield
        self.catalog_changed()

    def record_constraint_names(self, target: sa.Table) -> None:
        # DuckDB forgets every constraint name: the ones nothing derives are kept
        # in egregora_constraint_names (namerecord.py)
        if keep_names(driver(self.conn), target, self.dialect):
            self.catalog_changed()

    def offline_note(self, change: Change) -> str | None:
        if not change.dependents:
            return None
        return (
            f"-- create_copy_swap {change.table}: offline, the referencing tables "
            "are recreated from the revision's frozen definitions (online, from the "
            "database's own DDL)"
        )

    def readers_of(self, table: str, columns: Iterable[str]) -> Readers:
        return duckdb_readers(driver(self.conn), table, columns)

    # -- Alembic's plain operations, written by hand (handops.py) -----------------------------

    def needs_rebuild(self, table: str, op: Any) -> bool:
        """Where DuckDB's ALTER can't do ``op`` on the table as it is (capabilities.py), or
        rows can break it: a rebuild. Offline, asked of a plain table."""
        if isinstance(op, ops.RenameTableOp):
            return False  # DuckDB renames it, or refuses in our words (rename_table)
        if self.as_sql:
            return not duckdb_can_alter(op, PLAIN, features())[0]
        if held_target(self, table) is not None:
            return True  # written with the run's rebuild of the table, once
        with self._own():
            traits = traits_from_database(self.conn, table)
            if not duckdb_can_alter(op, traits, features())[0]:
                return True
            return rows_can_break(op) and _has_rows(self.conn, table)

    def definition_of(self, name: str) -> sa.Table:
        """Reflected, each column of the type DuckDB itself names (``duckdb_columns()``).

        SQLAlchemy's reflection reads some types as a wider family: a
        ``TIMESTAMP_NS`` comes back as a ``TIMESTAMP`` (microseconds), and a
        rebuild from it would cut every value's nanoseconds (measured). Nor
        does it read a column's collation, which the stored DDL keeps: a
        rebuild without it turned ``name = 'a'`` from a match into none.
        """
        table = self.reflected(name)
        spelled = {c.name: c.data_type for c in snapshot(driver(self.conn), [name])[name].columns}
        collations = column_collations(driver(self.conn), name)
        compile_type = self.dialect.type_compiler_instance.process
        for column in table.columns:
            exact = spelled.get(column.name)
            if exact is not None and compile_type(column.type).upper() != exact.upper():
                column.type = DuckDBType(exact)
            if column.name in collations and isinstance(column.type, sa.String):
                column.type = sa.String(column.type.length, collation=collations[column.name])
        return table

    def resolved(self, op: ops.DropConstraintOp) -> ops.DropConstraintOp:
        """The constraint a name means (names.py): DuckDB keeps none of them."""
        if self.as_sql or held_target(self, op.table_name) is not None:
            return op
        with self._own():
            found = resolve_constraint(
                self.conn, op.table_name, str(op.constraint_name), op.constraint_type
            )
        return ops.DropConstraintOp(found.name, op.table_name, type_=op.constraint_type)

    def rename_table(
        self,
        old_table_name: str,
        new_table_name: str | sa.sql.elements.quoted_name,
        schema: str | sa.sql.elements.quoted_name | None = None,
    ) -> None:
        if schema is None and not self.as_sql and not self.run.own_statements:
            with self._own():
                movable = renamable(driver(self.conn), old_table_name)
            if not movable:  # a key, an index, or a FOREIGN KEY into it: DuckDB refuses
                renamed_by_copy(self, old_table_name, str(new_table_name))
                return
        super().rename_table(old_table_name, new_table_name, schema=schema)

    def _own(self) -> Any:
        held = self.run.held
        return held.own() if held is not None else contextlib.nullcontext()

    def _recreate(self, table_name: str, schema: str | None) -> Any:
        # duckdb-sqlalchemy answers an ALTER that DuckDB refuses on a table
        # with an explicit index with Alembic's batch recreate, from
        # SQLAlchemy's reflection (which loses what it can't see, and checks
        # no row). Here such an operation is a rebuild (needs_rebuild); this
        # is never reached, and refuses if it is.
        raise InvalidOperation(
            f"An ALTER of table {table_name} that DuckDB can't do in place: the table "
            "has an explicit index, and DuckDB then refuses to drop a column or change "
            "its nullability, type or name. Nothing was changed. Write the change as "
            "op.create_copy_swap with the table's complete new definition (alembic "
            "revision --autogenerate writes it), which rebuilds the table keeping its "
            "indexes, checking every row first."
        )

    def correct_for_autogen_foreignkeys(self, conn_fks: Any, metadata_fks: Any) -> None:
        # DuckDB accepts ON DELETE/ON UPDATE RESTRICT and NO ACTION, stores
        # neither (the stored CREATE TABLE and duckdb_constraints() have no
        # trace of them) and behaves as both do: deleting or updating a
        # referenced key fails at once (measured on DuckDB 2.0.1). So a FOREIGN
        # KEY reflected with no action is the same as one declared with either:
        # without this, `alembic check` reported it dropped and added forever.
        super().correct_for_autogen_foreignkeys(conn_fks, metadata_fks)
        # A deferrable FOREIGN KEY is not in DuckDB's DDL (DuckDB can't defer
        # one: egregora.database.foreign_keys), so the database never has it;
        # comparing it would propose adding it forever. alembic check runs
        # egregora.database.integrity over it instead.
        for fk in [fk for fk in metadata_fks if not enforced_by(fk, self.dialect)]:
            metadata_fks.discard(fk)
        declared = {fk_signature(fk): fk for fk in metadata_fks}
        for conn_fk in conn_fks:
            wanted = declared.get(fk_signature(conn_fk))
            if wanted is None:
                continue
            for option in ("ondelete", "onupdate"):
                value = getattr(wanted, option)
                if getattr(conn_fk, option) is None and _engine_default(value):
                    setattr(conn_fk, option, value)

    def compare_type(self, inspector_column: Any, metadata_column: Any) -> bool:
        # Two spellings of one DuckDB type are no change: sa.Text() compiles to
        # TEXT, which DuckDB stores as VARCHAR, so without this `alembic check`
        # reported a changed type forever after the upgrade that "changed" it.
        if not super().compare_type(inspector_column, metadata_column):
            return False
        have = scratch_type_name(inspector_column.type)
        want = scratch_type_name(metadata_column.type)
        return have is None or want is None or have != want

    def compare_server_default(
        self,
        inspector_column: Any,
        metadata_column: Any,
        rendered_metadata_default: Any,
        rendered_inspector_default: Any,
    ) -> bool:
        # Alembic renders a plain string default (server_default="en") bare, as
        # en, while DuckDB reflects it as the literal 'en': without quoting it,
        # every string default reads as changed, and `alembic check` is never
        # clean.
        default = metadata_column.server_default
        if isinstance(default, sa.DefaultClause) and isinstance(default.arg, str):
            rendered_metadata_default = "'" + default.arg.replace("'", "''") + "'"
        return bool(
            super().compare_server_default(
                inspector_column,
                metadata_column,
                rendered_metadata_default,
                rendered_inspector_default,
            )
        )


class DuckDBType(sa.types.UserDefinedType[object]):
    """A column type as DuckDB spells it (``TIMESTAMP_NS``, ``DECIMAL(18,3)``...), kept as is."""

    cache_ok = True

    def __init__(self, spelled: str) -> None:
        self.spelled = spelled

    def get_col_spec(self, **kw: Any) -> str:
        return self.spelled


def _has_rows(connection: sa.Connection, table: str) -> bool:
    quoted = connection.dialect.identifier_preparer.quote(table)
    return connection.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {quoted})").scalar() is True


def _engine_default(action: str | None) -> bool:
    """RESTRICT or NO ACTION: what a DuckDB FOREIGN KEY does when it says nothing."""
    return action is not None and action.upper() in ("RESTRICT", "NO ACTION")


def kept_indexes(raw: Any, stages: Sequence[Stage]) -> list[str]:
    """CREATE INDEX of the table's indexes that no stage's definitions know: kept as they are.

    A user's or another store's index on the table must survive the rebuild
    (measured: before this, rebuilding posts dropped an index on posts.slug
    that nothing declared). An index a revision's ``previous=`` declares and
    its target does not is dropped on purpose. One kept that reads a column
    the rebuild drops is refused before any change, as a view or macro is.
    """
    target = stages[-1].target
    known = declared_indexes(stages)
    dropped = set(stages[0].previous.columns.keys()) - set(target.columns.keys())
    kept = []
    for index in stored_indexes(raw, target.name):
        if index.name in known:
            continue
        used = sorted(c for c in dropped if c.lower() in identifiers(index.expressions))
        if used:
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: the index {index.name}, which the new "
                f"definition does not declare, reads {', '.join(used)}, which it drops. "
                "Nothing was changed. Drop that index earlier in the revision "
                "(op.drop_index), or declare it on the new columns."
            )
        kept.append(index.sql)
    return kept


def refuse_breaking_readers(raw: Any, previous: sa.Table, target: sa.Table) -> None:
    """Refuse before any change when a view or a macro reads a column the rebuild drops.

    DuckDB binds views and macros when they are used, not when the table
    changes: after the rebuild they would fail ("Referenced column ... not
    found") on their next use, far from the migration. (PostgreSQL itself
    refuses to drop a column a view reads.)
    """
    dropped = sorted(set(previous.columns.keys()) - set(target.columns.keys()))
    for kind, name, used in duckdb_readers(raw, previous.name, dropped)[:1]:
        raise InvalidOperation(
            f"create_copy_swap on {target.name}: the {kind} {name} reads "
            f"{', '.join(used)}, which the new definition drops or renames, so the "
            f"{kind} would break. Nothing was changed. Drop or re-create the {kind} "
            "without those columns earlier in the revision (op.execute), then "
            "rebuild the table."
        )


def refuse_incompatible_references(
    connection: sa.Connection, target: sa.Table, dependents: Sequence[sa.Table]
) -> None:
    """Refuse before any change when a referencing column no longer matches its key.

    DuckDB rebuilds the referencing tables after the swap, and a FOREIGN KEY
    between columns of different types can't be created: without this check
    the rebuild fails half-way (rolled back, but late and with DuckDB's
    words). Types are compared as DuckDB names them (``typeof``), so that
    ``DOUBLE PRECISION`` in metadata and a reflected ``DOUBLE`` agree.
    """
    raw = driver(connection)
    compile_type = connection.dialect.type_compiler_instance.process
    for dependent in dependents:
        for fk in dependent.foreign_key_constraints:
            if referred_table(fk) != target.name:
                continue
            for column, referred in zip(fk.columns, referred_columns(fk), strict=True):
                if referred not in target.columns:
                    continue  # validate() says so, with its own message
                new = duckdb_type_name(raw, compile_type(target.columns[referred].type))
                have = duckdb_type_name(raw, compile_type(column.type))
                if new != have:
                    raise InvalidOperation(
                        f"create_copy_swap on {target.name}: {dependent.name}.{column.name} "
                        f"({have}) references {target.name}.{referred}, which the new "
                        f"definition makes {new}, and DuckDB can't keep a FOREIGN KEY between "
                        "different types. Nothing was changed. In one revision: rebuild "
                        f"{dependent.name} without that FOREIGN KEY, rebuild {target.name}, "
                        f"then rebuild {dependent.name} with the column as {new} and the "
                        "FOREIGN KEY back (column_map converts its values)."
                    )
