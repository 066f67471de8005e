"""What a database's catalog says about tables, in a comparable form.

On DuckDB the catalog functions are read directly; on other databases
(PostgreSQL) SQLAlchemy's inspector reads them (:func:`inspected_shapes`).

DuckDB renames constraints (``CONSTRAINT chk_x CHECK`` is stored as
``<table>_<col>_check``) and rewrites expressions in its own spelling
(extra parentheses, quoted keywords). Two definitions are therefore compared
by what DuckDB stores for them, never by name or by the text a developer
wrote: a definition from metadata is first created in a scratch in-memory
database, so that DuckDB itself canonicalizes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb
import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect as DuckDBDialect
from sqlalchemy.schema import CreateTable

from egregora.database.migration.definitions import StoredTable, all_checks
from egregora.database.migration.sqltext import normalize_sql


def driver(connection: sa.Connection) -> Any:
    """The driver's own connection under ``connection`` (DuckDB's, psycopg's): it runs
    catalog queries and the plan's statements as they are, with no SQLAlchemy layer."""
    raw = connection.connection.driver_connection
    assert raw is not None, "a live connection has a driver connection"
    return raw


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
        if wanted is None or row[0] in wanted:
            constraints.setdefault(row[0], set()).add(_constraint_shape(*row[1:]))
    return {
        table: TableShape(table, tuple(cols), frozenset(constraints.get(table, ())))
        for table, cols in columns.items()
    }


def _constraint_shape(
    kind: str, cols: Any, expression: str | None, ref_table: str | None, ref_cols: Any
) -> ConstraintShape:
    """A ``duckdb_constraints()`` row as a :class:`ConstraintShape`."""
    return ConstraintShape(
        kind=kind,
        columns=tuple(cols or ()),
        expression=_norm(expression) if kind == "CHECK" else None,
        referenced_table=ref_table or None,
        referenced_columns=tuple(ref_cols or ()),
    )


_NAMED_CONSTRAINTS_SQL = """
SELECT table_name, constraint_type, constraint_column_names, expression,
       referenced_table, referenced_column_names, constraint_name
FROM duckdb_constraints()
WHERE schema_name = current_schema() AND constraint_type <> 'NOT NULL'
ORDER BY table_name, constraint_index
"""


def constraints_with_engine_names(
    cursor: Any, names: Iterable[str] | None = None
) -> dict[str, list[tuple[ConstraintShape, str]]]:
    """Each table's constraints in DuckDB's order, with the name DuckDB made up for each.

    DuckDB names constraints itself (``<table>_<cols>_check``, ``_key``,
    ``_pkey``, ``<table>_<cols>_<referenced cols>_fkey``), whatever the DDL
    said; two CHECKs on one column share a name. See :mod:`.names`.
    """
    wanted = set(names) if names is not None else None
    found: dict[str, list[tuple[ConstraintShape, str]]] = {}
    for table, *row, engine_name in cursor.execute(_NAMED_CONSTRAINTS_SQL).fetchall():
        if wanted is None or table in wanted:
            found.setdefault(table, []).append((_constraint_shape(*row), str(engine_name)))
    return found


def canonical_shapes(tables: Iterable[sa.Table]) -> dict[str, TableShape]:
    """The shapes DuckDB itself stores for these metadata tables.

    Created in a scratch in-memory database in dependency order, so CHECK
    expressions and defaults come back in DuckDB's own spelling.
    """
    dialect = DuckDBDialect()
    ordered = sa.schema.sort_tables(list(tables))
    scratch = _scratch()
    created: list[str] = []
    try:
        for table in ordered:
            scratch.execute(str(CreateTable(table).compile(dialect=dialect)))
            created.append(table.name)
        return snapshot(scratch, [t.name for t in ordered])
    finally:
        for name in reversed(created):
            scratch.execute(f"DROP TABLE {dialect.identifier_preparer.quote(name)}")


@lru_cache(maxsize=1)
def _scratch() -> Any:
    """The process's scratch in-memory database (opening one took 30 to 230 ms, measured)."""
    return duckdb.connect(":memory:")


def canonical_check_expressions(
    table: sa.Table, dialect: sa.Dialect
) -> list[tuple[sa.CheckConstraint, str]]:
    """Each CHECK of ``table`` with the expression DuckDB stores for it."""
    return [
        (check, str(shape.expression)) for check, shape in canonical_check_shapes(table, dialect)
    ]


def canonical_check_shapes(
    table: sa.Table, dialect: sa.Dialect
) -> list[tuple[sa.CheckConstraint, ConstraintShape]]:
    """Each CHECK of ``table`` as DuckDB would hold it: its expression and the columns it reads.

    The checks are created on a scratch in-memory table with the same
    columns, one by one, so DuckDB itself spells each expression. The same
    probe is asked once per process (a run asks it for each operation's
    previous and target definitions: 0.3 s of a 500,000-row upgrade).
    """
    checks = all_checks(table)
    if not checks:
        return []
    columns = [sa.Column(c.name, probe_type(c.type)) for c in table.columns]
    probes = tuple(
        str(
            CreateTable(
                sa.Table(
                    "t",
                    sa.MetaData(),
                    *(c._copy() for c in columns),
                    sa.CheckConstraint(check.sqltext),
                )
            ).compile(dialect=dialect)
        )
        for check in checks
    )
    spelled = _spelled_checks(probes)
    return [
        (check, _constraint_shape("CHECK", names, expression, None, None))
        for check, (names, expression) in zip(checks, spelled, strict=True)
    ]


@lru_cache(maxsize=512)
def _spelled_checks(probes: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], str], ...]:
    """(columns read, expression) DuckDB stores for each probe table's one CHECK."""
    scratch = _scratch()
    found = []
    for probe in probes:
        scratch.execute("DROP TABLE IF EXISTS t")
        scratch.execute(probe)
        row = scratch.execute(
            "SELECT constraint_column_names, expression FROM duckdb_constraints() "
            "WHERE table_name = 't' AND constraint_type = 'CHECK'"
        ).fetchone()
        assert row is not None, "DuckDB keeps the CHECK it was just given"
        found.append((tuple(row[0] or ()), str(row[1])))
    scratch.execute("DROP TABLE t")
    return tuple(found)


def probe_type(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """A column type the scratch database can create: an Enum names a type that only
    the real database has (CREATE TYPE), so the probe holds its labels as VARCHAR."""
    return sa.String() if isinstance(type_, sa.Enum) else type_


def inspected_shapes(
    connection: sa.Connection, names: Iterable[str], schema: str | None = None
) -> dict[str, TableShape]:
    """The shape of each table ``names``, read through SQLAlchemy's inspector.

    For databases without DuckDB's catalog functions. Constraint names are
    left out, as on DuckDB: tables are compared by what they enforce.
    """
    inspector = sa.inspect(connection)
    dialect = connection.dialect
    shapes: dict[str, TableShape] = {}
    for name in names:
        columns = tuple(
            ColumnShape(
                c["name"],
                str(c["type"].compile(dialect=dialect)),
                bool(c["nullable"]),
                _norm(c.get("default")),
            )
            for c in inspector.get_columns(name, schema=schema)
        )
        constraints = {
            ConstraintShape("CHECK", (), _norm(str(c["sqltext"])))
            for c in inspector.get_check_constraints(name, schema=schema)
        }
        pk = inspector.get_pk_constraint(name, schema=schema)
        if pk and pk.get("constrained_columns"):
            constraints.add(ConstraintShape("PRIMARY KEY", tuple(pk["constrained_columns"])))
        constraints |= {
            ConstraintShape("UNIQUE", tuple(u["column_names"]))
            for u in inspector.get_unique_constraints(name, schema=schema)
        }
        constraints |= {
            ConstraintShape(
                "FOREIGN KEY",
                tuple(f["constrained_columns"]),
                referenced_table=f["referred_table"],
                referenced_columns=tuple(f["referred_columns"]),
            )
            for f in inspector.get_foreign_keys(name, schema=schema)
        }
        shapes[name] = TableShape(name, columns, frozenset(constraints))
    return shapes


#: Where :func:`scratch_shapes` creates definitions, inside a savepoint.
SCRATCH_SCHEMA = "egregora_scratch"


def scratch_shapes(connection: sa.Connection, tables: Iterable[sa.Table]) -> dict[str, TableShape]:
    """The shapes a server database stores for these metadata tables.

    The counterpart of :func:`canonical_shapes` for PostgreSQL, whose DDL is
    transactional: the tables are created in a scratch schema inside a
    savepoint, read back, and rolled back, so the server spells CHECK
    expressions and defaults its own way, and nothing remains.
    """
    ordered = sa.schema.sort_tables(list(tables))
    scratch = sa.MetaData()
    for table in ordered:
        table.to_metadata(scratch, schema=SCRATCH_SCHEMA)
    savepoint = connection.begin_nested()
    try:
        connection.execute(sa.schema.CreateSchema(SCRATCH_SCHEMA))
        scratch.create_all(connection)
        return inspected_shapes(connection, [t.name for t in ordered], schema=SCRATCH_SCHEMA)
    finally:
        savepoint.rollback()


_PROBE = "__egregora_check_probe"
_CHECK_DEFINITIONS = sa.text(
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = CAST(:table AS regclass) AND contype = 'c'"
)


def changed_check_names(connection: sa.Connection, target: sa.Table) -> set[str]:
    """Names of ``target``'s CHECKs that the database has under the same name, changed.

    PostgreSQL keeps constraint names but respells expressions
    (``status IN ('a')`` comes back as ``(status)::text = ANY (...)``), so
    the text a developer wrote can't be compared with the catalog. The
    target's CHECKs are therefore created on a temporary probe table inside a
    savepoint that is rolled back, and both sides are compared as the server
    spells them (``pg_get_constraintdef``).
    """
    named = [c for c in all_checks(target) if c.name is not None]
    preparer = connection.dialect.identifier_preparer
    existing = _check_definitions(connection, preparer.quote(target.name))
    named = [c for c in named if str(c.name) in existing]
    if not named:
        return set()
    probe = sa.Table(
        _PROBE,
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in target.columns),
        *(sa.CheckConstraint(c.sqltext, name=str(c.name)) for c in named),
        prefixes=["TEMPORARY"],
    )
    savepoint = connection.begin_nested()
    try:
        probe.create(connection)
        wanted = _check_definitions(connection, "pg_temp." + preparer.quote(_PROBE))
    finally:
        savepoint.rollback()
    return {name for name, definition in wanted.items() if existing.get(name) != definition}


def _check_definitions(connection: sa.Connection, qualified: str) -> dict[str, str]:
    """name -> normalized definition of the CHECKs of a table (None if it doesn't exist)."""
    exists = connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": qualified}).scalar()
    if exists is None:
        return {}
    rows = connection.execute(_CHECK_DEFINITIONS, {"table": qualified}).all()
    return {str(name): normalize_sql(str(definition)) for name, definition in rows}


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


def generated_columns(
    cursor: Any, table: str, defaulted: set[str], schema: str | None = None
) -> set[str]:
    """The generated columns among ``defaulted`` (those with a default or an expression).

    DuckDB 1.4 has no ``is_generated`` in ``duckdb_columns()`` and leaves
    information_schema's NULL (2.0 fills both), and ``duckdb_columns().column_default``
    holds a generated column's expression as if it were a default. DESCRIBE
    tells them apart on both: it shows no default for a generated column
    (measured on 1.4.3 and 2.0.1).
    """
    quote = DuckDBDialect().identifier_preparer.quote
    name = quote(table) if schema is None else f"{quote(schema)}.{quote(table)}"
    rows = cursor.execute(f"DESCRIBE {name}")
    return {row[0] for row in rows.fetchall() if row[0] in defaulted and row[4] is None}


def stored_tables(cursor: Any, names: Iterable[str]) -> dict[str, StoredTable]:
    """The stored definitions of the tables ``names`` of the current schema (DuckDB)."""
    wanted = list(names)
    if not wanted:
        return {}
    where = "schema_name = current_schema() AND table_name IN (SELECT unnest(?))"
    tables = cursor.execute(
        f"SELECT table_name, sql, comment FROM duckdb_tables() WHERE {where}", [wanted]
    ).fetchall()
    indexes: dict[str, list[str]] = {}
    for table, sql in cursor.execute(
        f"SELECT table_name, sql FROM duckdb_indexes() WHERE {where} ORDER BY index_name",
        [wanted],
    ).fetchall():
        if sql:  # key constraints' own indexes have no text: the CREATE TABLE has them
            indexes.setdefault(table, []).append(sql)
    defaulted: dict[str, set[str]] = {}
    comments: dict[str, list[tuple[str, str]]] = {}
    for table, column, has_default, comment in cursor.execute(
        "SELECT table_name, column_name, column_default IS NOT NULL, comment "
        "FROM duckdb_columns() "
        "WHERE schema_name = current_schema() AND table_name IN (SELECT unnest(?)) "
        "ORDER BY column_index",
        [wanted],
    ).fetchall():
        if has_default:
            defaulted.setdefault(table, set()).add(column)
        if comment:
            comments.setdefault(table, []).append((column, comment))
    generated = {table: generated_columns(cursor, table, cols) for table, cols in defaulted.items()}
    return {
        table: StoredTable(
            name=table,
            create_sql=str(sql).strip().rstrip(";"),
            index_sql=tuple(s.strip().rstrip(";") for s in indexes.get(table, [])),
            generated=frozenset(generated.get(table, ())),
            comment=comment or None,
            column_comments=tuple(comments.get(table, ())),
        )
        for table, sql, comment in tables
    }


@dataclass(frozen=True)
class StoredIndex:
    """An explicit index as DuckDB keeps it: its text, and the columns its expressions read."""

    name: str
    sql: str
    expressions: str


def stored_indexes(cursor: Any, table: str) -> list[StoredIndex]:
    """The explicit indexes of ``table`` in the current schema (not the keys' own)."""
    rows = cursor.execute(
        "SELECT index_name, sql, CAST(expressions AS VARCHAR) FROM duckdb_indexes() "
        "WHERE schema_name = current_schema() AND table_name = ? AND sql IS NOT NULL "
        "ORDER BY index_name",
        [table],
    ).fetchall()
    return [
        StoredIndex(name, sql.strip().rstrip(";"), expressions) for name, sql, expressions in rows
    ]


def renamable(cursor: Any, table: str) -> bool:
    """Whether DuckDB can rename ``table``: nothing references it, it has no index or key.

    DuckDB refuses to rename a table with an index (a PRIMARY KEY or UNIQUE
    is one) or one a FOREIGN KEY references; one whose own FOREIGN KEYs
    would be registered under the new name is not renamed either (see
    duckdb.py). Measured on DuckDB 2.0: a plain table renamed in the
    transaction that created it keeps its rows and their rowids.
    """
    keys = cursor.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = current_schema() "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY') "
        "AND (table_name = ? OR referenced_table = ?)",
        [table, table],
    ).fetchone()
    indexes = cursor.execute(
        "SELECT count(*) FROM duckdb_indexes() WHERE schema_name = current_schema() "
        "AND table_name = ?",
        [table],
    ).fetchone()
    return int(keys[0]) + int(indexes[0]) == 0


def column_collations(cursor: Any, table: str) -> dict[str, str]:
    """DuckDB: column -> collation (``COLLATE NOCASE``...) as the table's stored DDL says.

    Neither ``duckdb_columns()`` nor SQLAlchemy's reflection gives a column's
    collation (measured on 2.0.1: ``data_type`` is ``VARCHAR``); the stored
    ``CREATE TABLE`` keeps it, after the column's name and type.
    """
    row = cursor.execute(
        "SELECT sql FROM duckdb_tables() WHERE schema_name = current_schema() AND table_name = ?",
        [table],
    ).fetchone()
    if row is None or not row[0]:
        return {}
    found = {}
    for match in _COLLATED.finditer(str(row[0])):
        name = match.group(1) if match.group(1) is not None else match.group(2)
        found[name.replace('""', '"')] = match.group(3)
    return found


#: ``"name" TYPE COLLATE x`` or ``name TYPE COLLATE x`` in a stored CREATE TABLE
_COLLATED = re.compile(
    r'[(,]\s*(?:"((?:[^"]|"")+)"|(\w+))\s+[A-Za-z_][\w ]*?(?:\([^()]*\))?\s+COLLATE\s+"?(\w+)"?',
    re.IGNORECASE,
)


def reflect(connection: sa.Connection, name: str) -> sa.Table:
    """The table ``name`` as SQLAlchemy reflects it, in a MetaData of its own."""
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def view_and_macro_sources(cursor: Any) -> list[tuple[str, str, str]]:
    """DuckDB: (``view`` or ``macro``, name, SQL) of the user's views and macros."""
    rows = cursor.execute(
        "SELECT 'view', view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary "
        "UNION ALL SELECT 'macro', function_name, macro_definition FROM duckdb_functions() "
        "WHERE function_type IN ('macro', 'table_macro') AND NOT internal "
        "AND database_name = current_database()"
    ).fetchall()
    return [(str(kind), str(name), str(sql or "")) for kind, name, sql in rows]


def duckdb_type_name(cursor: Any, type_sql: str) -> str:
    """The name DuckDB gives the type ``type_sql`` (``typeof``): one name per type."""
    row = cursor.execute(f"SELECT typeof(CAST(NULL AS {type_sql}))").fetchone()
    return str(row[0])


def scratch_type_name(type_: sa.types.TypeEngine[Any]) -> str | None:
    """The name DuckDB gives a SQLAlchemy type (``typeof``), asked of a scratch database.

    None when the type can't be spelled for DuckDB, or DuckDB does not know it.
    """
    try:
        spelled = str(type_.compile(dialect=DuckDBDialect()))
    except sa.exc.CompileError:
        return None
    return _typeof(spelled)


@lru_cache(maxsize=256)
def _typeof(spelled: str) -> str | None:
    try:
        row = _scratch().execute(f"SELECT typeof(CAST(NULL AS {spelled}))").fetchone()
    except duckdb.Error:
        return None
    return str(row[0]) if row else None


def values_in(bind: sa.Connection, table: str, column: str | None = None) -> int:
    """The non-NULL values of ``table.column``, or the rows of ``table`` (None)."""
    quote = bind.dialect.identifier_preparer.quote
    counted = "*" if column is None else quote(column)
    return int(bind.exec_driver_sql(f"SELECT count({counted}) FROM {quote(table)}").scalar_one())


class InspectedCatalog:
    """A server's catalog, read through SQLAlchemy's inspector; spelled in a scratch schema.

    The default for every database; DuckDB reads its own catalog functions
    instead (duckdb/catalog.py). Each impl class names its catalog
    (``EgregoraImpl.catalog``), so no caller asks which database this is.
    """

    def __init__(self, bind: sa.Connection) -> None:
        self.bind = bind

    def tables_and_views(self) -> tuple[set[str], set[str]]:
        """Names of the base tables and of the views in the current schema."""
        inspector = sa.inspect(self.bind)
        return set(inspector.get_table_names()), set(inspector.get_view_names())

    def macro_names(self) -> set[str]:
        """User macros: DuckDB's (none elsewhere: not ours to list)."""
        return set()

    def shapes(self, names: Iterable[str]) -> dict[str, TableShape]:
        """The shapes of the tables ``names`` as the database holds them."""
        return inspected_shapes(self.bind, names)

    def expected_shapes(self, tables: Iterable[sa.Table]) -> dict[str, TableShape]:
        """The shapes the database would hold for these metadata tables, in its own spelling."""
        return scratch_shapes(self.bind, tables)

    def foreign_key_edges(self) -> list[tuple[str, str]]:
        """(table, referenced table) of every FOREIGN KEY in the current schema."""
        found = sa.inspect(self.bind).get_multi_foreign_keys().items()
        return sorted({(table, fk["referred_table"]) for (_, table), fks in found for fk in fks})

    def referencing(self, name: str) -> list[str]:
        """Tables whose FOREIGN KEYs reference ``name``, directly or through each other."""
        return closure(self.foreign_key_edges(), name)

    def spelled_checks(self, table: sa.Table) -> list[tuple[sa.CheckConstraint, str]]:
        """Each CHECK of ``table`` with the expression the database stores for it.

        Spelled in a rolled-back scratch schema, one probe table per CHECK, so
        that each expression comes back on its own.
        """
        found = []
        for check in all_checks(table):
            probe = sa.Table(
                table.name,
                sa.MetaData(),
                *(sa.Column(c.name, probe_type(c.type)) for c in table.columns),
                sa.CheckConstraint(check.sqltext, name=check.name),
            )
            shape = scratch_shapes(self.bind, [probe])[table.name]
            found += [(check, str(c.expression)) for c in shape.constraints if c.kind == "CHECK"]
        return found

    def undeclared_indexes(self, table: str) -> list[str]:
        """``name (columns)`` of the explicit indexes of ``table`` (not its keys' own)."""
        indexes = sorted(sa.inspect(self.bind).get_indexes(table), key=lambda i: str(i["name"]))
        return [
            f"{index['name']} ({', '.join(str(c) for c in index['column_names'])})"
            for index in indexes
            if not index.get("duplicates_constraint")
        ]

    def sequence_names(self) -> set[str]:
        """The standalone sequences of the current schema."""
        return set(sa.inspect(self.bind).get_sequence_names())


def closure(edges: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Tables whose FOREIGN KEYs reference ``name`` (``edges``: (table, referenced)),
    directly or through each other."""
    edges = list(edges)
    found: list[str] = []
    frontier = [name]
    while frontier:
        parent = frontier.pop()
        for child, referenced in edges:
            if referenced == parent and child != name and child not in found:
                found.append(child)
                frontier.append(child)
    return found
