"""duckdb-sqlalchemy's dialect, with what DuckDB's catalog loses given back to reflection.

Alembic reads a database through SQLAlchemy's reflection (autogenerate,
``alembic check``, ``sa.Table(..., autoload_with=...)``, its dialect test
suite). Two things DuckDB's catalog reports in a way reflection can't use
are corrected here, each in one place:

- **constraint names**: DuckDB keeps none (:mod:`.names`); each reflected
  PRIMARY KEY, UNIQUE, FOREIGN KEY and CHECK is given the name it answers to
  first (the record's, the history's, the convention's, else DuckDB's own).
- **generated columns**: duckdb-sqlalchemy reflects ``x AS (expr)`` as a
  column whose server default is ``CAST(expr AS <type>)``; it is reflected
  as ``sa.Computed(expr)``.

The record of names (``egregora_constraint_names``) is the migrations' own,
like ``alembic_version``: it is left out of the table names reflection
lists, so autogenerate, ``alembic check`` and ``metadata.reflect()`` never
see it.

``config.register_duckdb_dialect`` makes ``duckdb://`` URLs use this class
wherever the migration package is imported (env.py, tools, tests); an engine
made with it also keeps the record of names (:func:`.namerecord.install`).
The application's own engines (it imports ``schemas.py`` only) are
duckdb-sqlalchemy's, untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect as DuckDBDialect

from egregora.database.migration.catalog import ConstraintShape, driver, generated_columns
from egregora.database.migration.namerecord import RECORD_TABLE, install, named_constraints_of
from egregora.database.migration.names import CHECK, FOREIGN_KEY, PRIMARY_KEY, UNIQUE, signature
from egregora.database.migration.sqltext import normalize_sql

Reflected = Iterable[tuple[tuple[str | None, str], Any]]
_NAMES_CACHE = "egregora_constraint_names"


class EgregoraDuckDBDialect(DuckDBDialect):
    supports_statement_cache = True

    @classmethod
    def engine_created(cls, engine: sa.Engine) -> None:
        install(engine)

    def get_table_names(
        self, connection: sa.Connection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        names = super().get_table_names(connection, schema=schema, **kw)
        return [n for n in names if n != RECORD_TABLE]

    # -- constraint names ---------------------------------------------------------

    def get_multi_pk_constraint(
        self,
        connection: sa.Connection,
        schema: str | None = None,
        filter_names: Collection[str] | None = None,
        scope: Any = None,
        kind: Any = None,
        **kw: Any,
    ) -> Reflected:
        found = super().get_multi_pk_constraint(connection, schema, filter_names, scope, kind, **kw)
        return self._named(connection, schema, found, kw, _pk_shape)

    def get_multi_unique_constraints(
        self,
        connection: sa.Connection,
        schema: str | None = None,
        filter_names: Collection[str] | None = None,
        scope: Any = None,
        kind: Any = None,
        **kw: Any,
    ) -> Reflected:
        found = super().get_multi_unique_constraints(
            connection, schema, filter_names, scope, kind, **kw
        )
        return self._named(connection, schema, found, kw, _unique_shape)

    def get_multi_foreign_keys(
        self,
        connection: sa.Connection,
        schema: str | None = None,
        filter_names: Collection[str] | None = None,
        scope: Any = None,
        kind: Any = None,
        postgresql_ignore_search_path: bool = False,
        **kw: Any,
    ) -> Reflected:
        found = super().get_multi_foreign_keys(
            connection, schema, filter_names, scope, kind, postgresql_ignore_search_path, **kw
        )
        return self._named(connection, schema, found, kw, _fk_shape)

    def get_multi_check_constraints(
        self,
        connection: sa.Connection,
        schema: str | None = None,
        filter_names: Collection[str] | None = None,
        scope: Any = None,
        kind: Any = None,
        **kw: Any,
    ) -> Reflected:
        found = super().get_multi_check_constraints(
            connection, schema, filter_names, scope, kind, **kw
        )
        return self._named(connection, schema, found, kw, _check_shape)

    def _named(
        self,
        connection: sa.Connection,
        schema: str | None,
        found: Reflected,
        kw: Mapping[str, Any],
        shape_of: Callable[[Mapping[str, Any]], ConstraintShape],
    ) -> Reflected:
        results = list(found)
        if schema is not None:
            return results  # the record and the convention speak of the current schema
        names = self._names(connection, kw.get("info_cache"))
        renamed = []
        for key, value in results:
            by_signature = names.get(key[1], {})

            def rename(item: Mapping[str, Any], by: dict[Any, str] = by_signature) -> Any:
                if not item or item.get("name") is None:
                    return item
                return {**item, "name": by.get(signature(shape_of(item)), item["name"])}

            renamed.append(
                (key, [rename(v) for v in value] if isinstance(value, list) else rename(value))
            )
        return renamed

    def _names(
        self, connection: sa.Connection, cache: dict[Any, Any] | None
    ) -> dict[str, dict[tuple[object, ...], str]]:
        """table -> constraint signature -> the name it is given back under (one read)."""
        if cache is not None and _NAMES_CACHE in cache:
            return cache[_NAMES_CACHE]  # type: ignore[no-any-return]
        names = {
            table: {signature(c.shape): c.name for c in constraints}
            for table, constraints in named_constraints_of(driver(connection)).items()
        }
        if cache is not None:
            cache[_NAMES_CACHE] = names
        return names

    # -- generated columns --------------------------------------------------------

    def get_columns(
        self, connection: sa.Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        columns = super().get_columns(connection, table_name, schema=schema, **kw)
        generated = _generated(connection, schema, [table_name])
        return [_computed(c, generated.get((table_name, c["name"]))) for c in columns]

    def get_multi_columns(
        self,
        connection: sa.Connection,
        schema: str | None = None,
        filter_names: Collection[str] | None = None,
        scope: Any = None,
        kind: Any = None,
        **kw: Any,
    ) -> Reflected:
        results = list(
            super().get_multi_columns(connection, schema, filter_names, scope, kind, **kw)
        )
        generated = _generated(connection, schema, [key[1] for key, _ in results])
        return [
            (key, [_computed(c, generated.get((key[1], c["name"]))) for c in columns])
            for key, columns in results
        ]


def _pk_shape(item: Mapping[str, Any]) -> ConstraintShape:
    return ConstraintShape(PRIMARY_KEY, tuple(item["constrained_columns"]))


def _unique_shape(item: Mapping[str, Any]) -> ConstraintShape:
    return ConstraintShape(UNIQUE, tuple(item["column_names"]))


def _fk_shape(item: Mapping[str, Any]) -> ConstraintShape:
    return ConstraintShape(
        FOREIGN_KEY,
        tuple(item["constrained_columns"]),
        referenced_table=item["referred_table"],
        referenced_columns=tuple(item["referred_columns"]),
    )


def _check_shape(item: Mapping[str, Any]) -> ConstraintShape:
    return ConstraintShape(CHECK, (), expression=normalize_sql(str(item["sqltext"])))


def _generated(
    connection: sa.Connection, schema: str | None, tables: list[str]
) -> dict[tuple[str, str], str]:
    """(table, column) -> the expression of each generated column of ``tables``."""
    if not tables:
        return {}
    cursor = driver(connection)
    rows = cursor.execute(
        "SELECT table_name, column_name, data_type, column_default FROM duckdb_columns() "
        "WHERE schema_name = coalesce(?, current_schema()) AND column_default IS NOT NULL "
        "AND table_name IN (SELECT unnest(?))",
        [schema, tables],
    ).fetchall()
    defaulted: dict[str, dict[str, tuple[str, str]]] = {}
    for table, column, data_type, expression in rows:
        defaulted.setdefault(table, {})[column] = (str(expression), data_type)
    found = {}
    for table, columns in defaulted.items():
        for column in generated_columns(cursor, table, set(columns), schema):
            expression, data_type = columns[column]
            found[(table, column)] = generated_expression(expression, data_type)
    return found


def _computed(column: Mapping[str, Any], expression: str | None) -> Any:
    if expression is None:
        return column
    computed = {"sqltext": expression, "persisted": False}  # DuckDB has VIRTUAL ones only
    return {**column, "default": None, "computed": computed}


def generated_expression(default: str, data_type: str) -> str:
    """A generated column's expression, from what ``duckdb_columns()`` reports for it.

    Measured on DuckDB 2.0.1: ``y INTEGER AS (y * 2)`` reports the default
    ``CAST((y * 2) AS INTEGER)``, ``DECIMAL(10,2) AS (y / 3)`` reports
    ``CAST((y / 3) AS DECIMAL(10, 2))``; the stored CREATE TABLE keeps
    ``(y * 2)``. The cast DuckDB added to the column's own type is taken off,
    so the expression reads as written.
    """
    text = default.strip()
    if not (text.upper().startswith("CAST(") and text.endswith(")")):
        return text
    inner = text[5:-1]
    cut = _last_top_level_as(inner)
    if cut is None:
        return text
    cast_to = inner[cut + 4 :]
    if cast_to.replace(" ", "").upper() != data_type.replace(" ", "").upper():
        return text
    return inner[:cut].strip()


def _last_top_level_as(text: str) -> int | None:
    """Index of the last `` AS `` outside parentheses and quotes in ``text``."""
    depth, quote, found = 0, "", None
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and text[i : i + 4].upper() == " AS ":
            found = i
    return found
