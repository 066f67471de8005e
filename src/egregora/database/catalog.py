"""What DuckDB's catalog says about tables, in a comparable form.

DuckDB renames constraints (``CONSTRAINT chk_x CHECK`` is stored as
``<table>_<col>_check``) and rewrites expressions in its own spelling
(extra parentheses, quoted keywords). Two definitions are therefore compared
by what DuckDB stores for them, never by name or by the text a developer
wrote: a definition from metadata is first created in a scratch in-memory
database, so that DuckDB itself canonicalizes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from egregora.database.sqltext import normalize_sql


@dataclass(frozen=True)
class ColumnShape:
    name: str
    data_type: str
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class ConstraintShape:
    kind: str  # CHECK, UNIQUE, PRIMARY KEY, FOREIGN KEY
    columns: tuple[str, ...]
    expression: str | None = None
    referenced_table: str | None = None
    referenced_columns: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "CHECK":
            return f"CHECK ({self.expression})"
        if self.kind == "FOREIGN KEY":
            return (
                f"FOREIGN KEY ({', '.join(self.columns)}) REFERENCES "
                f"{self.referenced_table} ({', '.join(self.referenced_columns)})"
            )
        return f"{self.kind} ({', '.join(self.columns)})"


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[ColumnShape, ...]
    constraints: frozenset[ConstraintShape] = field(default_factory=frozenset)


_COLUMNS_SQL = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM duckdb_columns()
WHERE schema_name = current_schema() AND NOT internal
ORDER BY table_name, column_index
"""

_CONSTRAINTS_SQL = """
SELECT table_name, constraint_type, constraint_column_names, expression,
       referenced_table, referenced_column_names
FROM duckdb_constraints()
WHERE schema_name = current_schema() AND constraint_type <> 'NOT NULL'
"""

_TABLES_SQL = """
SELECT table_name FROM duckdb_tables()
WHERE schema_name = current_schema() AND NOT internal AND NOT temporary
"""


def table_names(cursor: Any) -> set[str]:
    """Names of the base tables in the current schema (no views)."""
    return {row[0] for row in cursor.execute(_TABLES_SQL).fetchall()}


def snapshot(cursor: Any, names: Iterable[str] | None = None) -> dict[str, TableShape]:
    """The shape of each table in the current schema (optionally only ``names``).

    ``cursor`` is anything with DuckDB's ``execute(sql).fetchall()``: a
    ``duckdb`` connection, or SQLAlchemy's raw driver connection.
    """
    wanted = set(names) if names is not None else None
    columns: dict[str, list[ColumnShape]] = {}
    for table, name, data_type, nullable, default in cursor.execute(_COLUMNS_SQL).fetchall():
        if wanted is None or table in wanted:
            columns.setdefault(table, []).append(
                ColumnShape(name, data_type, bool(nullable), _norm(default))
            )
    constraints: dict[str, set[ConstraintShape]] = {}
    for row in cursor.execute(_CONSTRAINTS_SQL).fetchall():
        table, kind, cols, expression, ref_table, ref_cols = row
        if wanted is not None and table not in wanted:
            continue
        constraints.setdefault(table, set()).add(
            ConstraintShape(
                kind=kind,
                columns=tuple(cols or ()),
                expression=_norm(expression) if kind == "CHECK" else None,
                referenced_table=ref_table or None,
                referenced_columns=tuple(ref_cols or ()),
            )
        )
    return {
        table: TableShape(table, tuple(cols), frozenset(constraints.get(table, ())))
        for table, cols in columns.items()
    }


def canonical_shapes(tables: Iterable[sa.Table]) -> dict[str, TableShape]:
    """The shapes DuckDB itself stores for these metadata tables.

    Created in a scratch in-memory database in dependency order, so CHECK
    expressions and defaults come back in DuckDB's own spelling.
    """
    from duckdb_sqlalchemy import Dialect

    dialect = Dialect()
    ordered = sa.schema.sort_tables(list(tables))
    scratch = duckdb.connect(":memory:")
    try:
        for table in ordered:
            scratch.execute(str(CreateTable(table).compile(dialect=dialect)))
        return snapshot(scratch, [t.name for t in ordered])
    finally:
        scratch.close()


def describe_differences(expected: TableShape, actual: TableShape) -> list[str]:
    """Human-readable differences of one table, empty when they match."""
    problems: list[str] = []
    want = {c.name: c for c in expected.columns}
    have = {c.name: c for c in actual.columns}
    for name in want.keys() - have.keys():
        problems.append(f"column {expected.name}.{name} is missing")
    for name in have.keys() - want.keys():
        problems.append(f"column {expected.name}.{name} is not in the expected schema")
    for name in want.keys() & have.keys():
        w, h = want[name], have[name]
        if w.data_type != h.data_type:
            problems.append(
                f"column {expected.name}.{name} is {h.data_type}, expected {w.data_type}"
            )
        if w.nullable != h.nullable:
            problems.append(
                f"column {expected.name}.{name} is "
                f"{'nullable' if h.nullable else 'NOT NULL'}, expected "
                f"{'nullable' if w.nullable else 'NOT NULL'}"
            )
        if w.default != h.default:
            problems.append(
                f"column {expected.name}.{name} has default {h.default}, expected {w.default}"
            )
    for constraint in sorted(expected.constraints - actual.constraints, key=repr):
        problems.append(f"table {expected.name} lacks {constraint.describe()}")
    for constraint in sorted(actual.constraints - expected.constraints, key=repr):
        problems.append(f"table {expected.name} has unexpected {constraint.describe()}")
    return problems


def _norm(text: str | None) -> str | None:
    return None if text is None else normalize_sql(text)
