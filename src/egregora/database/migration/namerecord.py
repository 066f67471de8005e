"""DuckDB: the record of the constraint names it can't give back (``egregora_constraint_names``).

DuckDB forgets every constraint name (:mod:`.names`). Most names this
schema uses come back anyway, derived from the constraint itself (the naming
convention) or from the history; the others (``op.create_foreign_key("fk2",
...)``, ``CheckConstraint(..., name="positive")``) are kept here, one row per
name: the table, the name, and what the constraint is (kind, columns,
expression as DuckDB spells it, referenced table and columns). A row counts
only while its table holds a constraint that is what the row says, so DDL
made outside this package leaves rows that match nothing, never a wrong name.

Written in the migration's own transaction (a dry run or a failed migration
takes it back), by whatever creates a table or a constraint through a DuckDB
engine of this package's dialect (:func:`install`: ``op.create_table``,
``metadata.create_all``, ``op.create_unique_constraint``...), and by
rebuilds (:func:`keep_names`). Like ``alembic_version``, the table belongs to
the migrations: ``alembic check`` and autogenerate ignore it. Never on
PostgreSQL, which keeps names.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.ddl.base import RenameTable
from duckdb_sqlalchemy import Dialect as DuckDBDialect
from sqlalchemy import event
from sqlalchemy.schema import AddConstraint, ColumnCollectionConstraint, CreateTable, DropTable

from egregora.database.migration.catalog import (
    ConstraintShape,
    canonical_check_shapes,
    constraints_with_engine_names,
    driver,
    table_names,
)
from egregora.database.migration.definitions import column_checks, referred_columns, referred_table
from egregora.database.migration.names import (
    FOREIGN_KEY,
    PRIMARY_KEY,
    UNIQUE,
    HeldConstraint,
    NamedConstraint,
    RecordedName,
    named_constraints,
    needs_record,
    resolve,
)

log = logging.getLogger(__name__)

RECORD_TABLE = "egregora_constraint_names"
#: Alembic's own table: the name of its PRIMARY KEY (``alembic_version_pkc``) is Alembic's.
ALEMBIC_VERSION_TABLE = "alembic_version"

_Q = DuckDBDialect().identifier_preparer.quote(RECORD_TABLE)
_COLUMNS = (
    "table_name, constraint_name, constraint_type, column_names, expression, "
    "referenced_table, referenced_column_names"
)
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {_Q} (table_name VARCHAR NOT NULL, "
    "constraint_name VARCHAR NOT NULL, constraint_type VARCHAR NOT NULL, "
    "column_names VARCHAR[] NOT NULL, expression VARCHAR, referenced_table VARCHAR, "
    "referenced_column_names VARCHAR[] NOT NULL)"
)


# -- reading -------------------------------------------------------------------


def has_record(cursor: Any) -> bool:
    row = cursor.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = current_schema() "
        "AND table_name = ?",
        [RECORD_TABLE],
    ).fetchone()
    return bool(row and row[0])


def recorded_names(cursor: Any, tables: Iterable[str] | None = None) -> list[RecordedName]:
    """The record's rows (of ``tables`` only, if given); none when there is no record."""
    if not has_record(cursor):
        return []
    wanted = None if tables is None else set(tables)
    rows = cursor.execute(f"SELECT {_COLUMNS} FROM {_Q} ORDER BY rowid").fetchall()
    return [
        RecordedName(
            table,
            name,
            ConstraintShape(kind, tuple(cols), expression, ref_table, tuple(ref_cols or ())),
        )
        for table, name, kind, cols, expression, ref_table, ref_cols in rows
        if wanted is None or table in wanted
    ]


def named_constraints_of(
    cursor: Any, tables: Iterable[str] | None = None
) -> dict[str, list[NamedConstraint]]:
    """Each table's constraints (in DuckDB's order) with the names they answer to."""
    held = constraints_with_engine_names(cursor, tables)
    recorded = recorded_names(cursor, held)
    return {
        table: named_constraints(table, [HeldConstraint(s, n) for s, n in pairs], recorded)
        for table, pairs in held.items()
    }


def resolve_constraint(
    connection: sa.Connection, table: str, name: str, type_: str | None = None
) -> NamedConstraint:
    """The constraint of ``table`` that ``name`` means on this DuckDB database (see names.py).

    What ``op.drop_constraint(name, table, type_=...)`` asks; refused with one
    paragraph (``InvalidOperation``) listing the table's constraints under
    the names they answer to.
    """
    raw = driver(connection)
    pairs = constraints_with_engine_names(raw, [table]).get(table, [])
    held = [HeldConstraint(shape, engine_name) for shape, engine_name in pairs]
    return resolve(table, held, name, type_, recorded_names(raw, [table]))


# -- writing -------------------------------------------------------------------


def keep_names(cursor: Any, table: sa.Table, dialect: sa.Dialect | None = None) -> bool:
    """``table`` is (re)created from this definition: its names replace the record's.

    Call it where a table is written from a definition without SQLAlchemy's
    ``CreateTable`` passing through an engine (a rebuild); :func:`install`
    does it for those that do. True when the record changed (what reflection
    says of the table's constraint names may then differ).
    """
    if table.name in (ALEMBIC_VERSION_TABLE, RECORD_TABLE) or table.schema is not None:
        return False
    forgotten = forget(cursor, table.name)
    kept = record(cursor, table.name, definition_names(table, dialect or DuckDBDialect()))
    return forgotten or kept


@contextlib.contextmanager
def names_kept(cursor: Any, table: str) -> Iterator[None]:
    """Around a change made in place (a column renamed): each constraint keeps its name.

    DuckDB rewrites a renamed column into the table's CHECKs and keys, and
    the names those answered to may come from their old text (a history
    name, the convention over the old column): after the block each one is
    recorded under the name it answered to before, where that is not what
    its new shape gives back by itself. The constraints are paired in
    DuckDB's order, which a rename keeps.
    """
    before = named_constraints_of(cursor, [table]).get(table, [])
    yield
    after = constraints_with_engine_names(cursor, [table]).get(table, [])
    if len(after) != len(before):
        return  # not a rename of this table's columns: nothing to carry
    forget(cursor, table)
    kept = [(shape, was.name) for (shape, _), was in zip(after, before, strict=True)]
    record(cursor, table, kept)


def record(cursor: Any, table: str, named: Iterable[tuple[ConstraintShape, str]]) -> bool:
    """Keep the names of ``table``'s constraints that DuckDB and the convention can't give back.

    True when any had to be kept.
    """
    rows = [
        [
            table,
            name,
            shape.kind,
            list(shape.columns),
            shape.expression,
            shape.referenced_table,
            list(shape.referenced_columns),
        ]
        for shape, name in named
        if needs_record(table, shape, name)
    ]
    if not rows:
        return False
    cursor.execute(_CREATE)
    cursor.executemany(f"INSERT INTO {_Q} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return True


def forget(cursor: Any, table: str) -> bool:
    """The table is gone (or about to be created anew): its names go too. True if it had any."""
    if not has_record(cursor):
        return False
    deleted = cursor.execute(f"DELETE FROM {_Q} WHERE table_name = ?", [table]).fetchone()
    return bool(deleted and deleted[0])


def rename(cursor: Any, old: str, new: str) -> None:
    """A table was renamed: its names, and the FOREIGN KEYs that reference it, follow."""
    if has_record(cursor):
        cursor.execute(f"UPDATE {_Q} SET table_name = ? WHERE table_name = ?", [new, old])
        cursor.execute(
            f"UPDATE {_Q} SET referenced_table = ? WHERE referenced_table = ?", [new, old]
        )


def definition_names(
    table: sa.Table, dialect: sa.Dialect, constraints: Iterable[sa.Constraint] | None = None
) -> list[tuple[ConstraintShape, str]]:
    """(what DuckDB will hold, name) of the named constraints of a definition (or of some).

    CHECK expressions are spelled by DuckDB itself, on a scratch database.
    """
    chosen = all_constraints(table) if constraints is None else list(constraints)
    found: list[tuple[ConstraintShape, str]] = []
    for constraint in chosen:
        name = _name(constraint)
        if name is None or isinstance(constraint, sa.CheckConstraint):
            continue
        shape = _key_shape(constraint)
        if shape is not None:
            found.append((shape, name))
    checks = {id(c) for c in chosen if isinstance(c, sa.CheckConstraint) and _name(c)}
    if not checks:
        return found
    try:
        spelled = canonical_check_shapes(table, dialect)
    except (duckdb.Error, sa.exc.SQLAlchemyError) as exc:  # a type DuckDB can't probe
        log.warning("CHECK names of %s not recorded: %s", table.name, exc)
        return found
    return found + [(shape, str(_name(c))) for c, shape in spelled if id(c) in checks]


def all_constraints(table: sa.Table) -> list[sa.Constraint]:
    """The table's constraints, with the CHECKs declared on its columns."""
    return [*table.constraints, *column_checks(table)]


def _key_shape(constraint: sa.Constraint) -> ConstraintShape | None:
    if not isinstance(constraint, ColumnCollectionConstraint) or not constraint.columns:
        return None
    columns = tuple(c.name for c in constraint.columns)
    if isinstance(constraint, sa.PrimaryKeyConstraint):
        return ConstraintShape(PRIMARY_KEY, columns)
    if isinstance(constraint, sa.UniqueConstraint):
        return ConstraintShape(UNIQUE, columns)
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return ConstraintShape(
            FOREIGN_KEY,
            columns,
            referenced_table=referred_table(constraint),
            referenced_columns=tuple(referred_columns(constraint)),
        )
    return None


def _name(constraint: sa.Constraint) -> str | None:
    name = constraint.name
    if name is None or str(name) == "_NONE_NAME":
        return None
    return str(name)


# -- kept by SQLAlchemy's DDL ----------------------------------------------------


def install(engine: sa.Engine) -> None:
    """Keep the names of what ``engine`` creates (tables, constraints), follow renames and drops."""
    event.listen(engine, "after_execute", _after_ddl)


def _after_ddl(
    conn: sa.Connection, element: Any, multiparams: Any, params: Any, options: Any, result: Any
) -> None:
    if isinstance(element, CreateTable):
        table = element.element
        raw = driver(conn)
        if table.schema is None and table.name in table_names(raw):  # not a TEMPORARY one
            keep_names(raw, table, conn.dialect)
    elif isinstance(element, DropTable) and element.element.schema is None:
        forget(driver(conn), element.element.name)
    elif isinstance(element, AddConstraint):
        constraint = element.element
        table = constraint.table
        if table.schema is None and table.name != ALEMBIC_VERSION_TABLE:
            names = definition_names(table, conn.dialect, [constraint])
            record(driver(conn), table.name, names)
    elif isinstance(element, RenameTable) and element.schema is None:
        rename(driver(conn), str(element.table_name), str(element.new_table_name))
