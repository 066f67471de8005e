"""How create_copy_swap runs on each engine, chosen once, by dialect name.

``ENGINES`` maps a dialect name to an :class:`Engine`: its planner and what
it reads and refuses before the change, and how it executes a step.

- DuckDB (:class:`Rebuild`): the table and its referencing tables are
  rebuilt; the rebuild reads their stored DDL and the table's undeclared
  indexes from the catalog, and refuses what would break after the swap.
- PostgreSQL (:class:`InPlace`): the table is altered where it stands;
  CHECKs are matched by name, so the server says which ones changed; each
  statement runs under the run's lock policy (locks.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa

from egregora.database.migration.afterwards import AFTER_COMMIT, defer, take
from egregora.database.migration.catalog import (
    changed_check_names,
    driver,
    duckdb_type_name,
    referencing_closure,
    renamable,
    stored_indexes,
    stored_tables,
    view_and_macro_sources,
)
from egregora.database.migration.copyswap.duckdb import RebuildPlanner
from egregora.database.migration.copyswap.model import Step
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.postgresql import InPlacePlanner
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.definitions import referred_columns, referred_table
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.locks import LOCK_POLICY_INFO, execute_with_retries
from egregora.database.migration.pglocks import note
from egregora.database.migration.runstate import REPORT_OPTION, current_revision
from egregora.database.migration.sqltext import identifiers


@dataclass(frozen=True)
class Current:
    """An operation, and its table and referencing tables as the database has them now."""

    operation: CreateCopySwapOp
    previous: sa.Table
    dependents: Sequence[sa.Table]
    #: index names declared by a fused rebuild's earlier stages (fusion.py)
    known_indexes: frozenset[str] = frozenset()


class Engine:
    """What differs between engines when a create_copy_swap runs."""

    planner: ClassVar[type[StepPlanner]]
    #: altered where it stands (rows kept in place) rather than copied
    in_place: ClassVar[bool]
    #: a run holds its rebuilds back to write each table once (pending.py)
    holds_rebuilds: ClassVar[bool] = False

    def catalog_inputs(self, connection: sa.Connection, now: Current) -> dict[str, Any]:
        """plan_copy_swap's arguments that only the live catalog can give."""
        raise NotImplementedError

    def refuse_before_change(self, connection: sa.Connection, now: Current) -> None:
        """Refuse, before any change, what would fail or break after it (nothing by default)."""

    def before_operation(self, connection: sa.Connection, operation: CreateCopySwapOp) -> None:
        """Before the operation reads the catalog (nothing by default)."""

    def execute(self, connection: sa.Connection, raw: Any, step: Step) -> None:
        raw.execute(step.sql)

    def offline_note(self, operation: CreateCopySwapOp) -> str | None:
        """A comment for offline scripts, where the catalog can't be read."""
        return None


class Rebuild(Engine):
    planner = RebuildPlanner
    in_place = False
    # each rebuild writes the whole table: a run writes each table once
    holds_rebuilds = True

    def catalog_inputs(self, connection: sa.Connection, now: Current) -> dict[str, Any]:
        # dependents come back exactly as the catalog keeps them, now
        raw = driver(connection)
        return {
            "stored": stored_tables(raw, [d.name for d in now.dependents]),
            "kept_indexes": kept_indexes(raw, now.previous, now.operation, now.known_indexes),
            "renamable": renamable(raw, now.previous.name),
        }

    def refuse_before_change(self, connection: sa.Connection, now: Current) -> None:
        target = now.operation.table
        refuse_breaking_readers(driver(connection), now.previous, target)
        refuse_incompatible_references(connection, target, now.dependents)

    def offline_note(self, operation: CreateCopySwapOp) -> str | None:
        if not operation.dependents:
            return None
        return (
            f"-- create_copy_swap {operation.table.name}: offline, the referencing tables "
            "are recreated from the revision's frozen definitions (online, from the "
            "database's own DDL)"
        )


class InPlace(Engine):
    planner = InPlacePlanner
    in_place = True

    def catalog_inputs(self, connection: sa.Connection, now: Current) -> dict[str, Any]:
        # CHECKs are matched by name; ask the server which of them keep their
        # name but not their expression
        return {"changed_checks": changed_check_names(connection, now.operation.table)}

    def before_operation(self, connection: sa.Connection, operation: CreateCopySwapOp) -> None:
        """What this run deferred on the tables the operation touches runs now (afterwards.take).

        The table, the tables that reference it (rebuilt by nothing here, but
        reflected), and those its FOREIGN KEYs reference (their keys must exist).
        """
        queue = connection.info.get(AFTER_COMMIT)
        if not queue:
            return
        name = operation.table.name
        touched = {name, *referencing_closure(connection, name)}
        touched |= {referred_table(fk) for fk in operation.table.foreign_key_constraints}
        raw = driver(connection)
        for sql in take(queue, touched):
            note(connection.info.get(REPORT_OPTION), current_revision(), sql)
            self.run_now(connection, raw, sql)

    def execute(self, connection: sa.Connection, raw: Any, step: Step) -> None:
        queue = connection.info.get(AFTER_COMMIT)
        report = connection.info.get(REPORT_OPTION)
        if step.online and defer(queue, current_revision(), step.table, step.online):
            for sql in step.online:  # finished after the run's commit (afterwards.py)
                note(report, current_revision(), sql, after_commit=True)
            return
        note(report, current_revision(), step.sql)
        self.run_now(connection, raw, step.sql, step.table)

    def run_now(
        self, connection: sa.Connection, raw: Any, sql: str, table: str | None = None
    ) -> None:
        policy = connection.info.get(LOCK_POLICY_INFO)
        if policy is None:
            raw.execute(sql)
            return
        quoted = None if table is None else connection.dialect.identifier_preparer.quote(table)
        execute_with_retries(raw, sql, quoted, policy)


#: The engines, by dialect name: the one place that chooses.
ENGINES: dict[str, Engine] = {"duckdb": Rebuild(), "postgresql": InPlace()}


def engine_for(dialect_name: str) -> Engine:
    """The engine for ``dialect_name``; a clear refusal for any other database."""
    engine = ENGINES.get(dialect_name)
    if engine is None:
        raise InvalidOperation(
            "create_copy_swap runs on DuckDB (a rebuild) and PostgreSQL (ALTER in place), "
            f"not on {dialect_name}. Use Alembic's plain operations there."
        )
    return engine


def kept_indexes(
    raw: Any,
    previous: sa.Table,
    operation: CreateCopySwapOp,
    declared: frozenset[str] = frozenset(),
) -> list[str]:
    """CREATE INDEX of the table's indexes that neither definition knows: kept as they are.

    A user's or another store's index on the table must survive the rebuild
    (measured: before this, rebuilding posts dropped an index on posts.slug
    that nothing declared). An index the revision's ``previous=`` declares and
    its target does not is dropped on purpose. One kept that reads a column
    the rebuild drops is refused before any change, as a view or macro is.
    """
    target = operation.table
    known = {str(index.name) for index in target.indexes} | declared
    if operation.previous is not None:
        known |= {str(index.name) for index in operation.previous.indexes}
    dropped = set(previous.columns.keys()) - set(target.columns.keys())
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
    dropped = set(previous.columns.keys()) - set(target.columns.keys())
    if not dropped:
        return
    for kind, name, sql in view_and_macro_sources(raw):
        tokens = identifiers(sql)
        if previous.name.lower() not in tokens:
            continue
        used = sorted(c for c in dropped if c.lower() in tokens)
        if used:
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
