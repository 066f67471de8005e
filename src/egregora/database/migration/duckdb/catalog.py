"""DuckDB's catalog, read from its own functions (``duckdb_tables()``, ``duckdb_indexes()``...).

SQLAlchemy's inspector over duckdb-sqlalchemy loses detail DuckDB keeps (the
stored DDL, expression indexes, its own spelling of CHECKs), and a server's
scratch schema does not exist here: DuckDB spells a definition in a scratch
in-memory database instead (catalog.canonical_shapes).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.migration.catalog import (
    InspectedCatalog,
    TableShape,
    canonical_check_expressions,
    canonical_shapes,
    driver,
    snapshot,
    stored_indexes,
    table_names,
)

__all__ = ["DuckDBCatalog"]


class DuckDBCatalog(InspectedCatalog):
    """The catalog of a DuckDB database, through the driver's own connection."""

    def tables_and_views(self) -> tuple[set[str], set[str]]:
        raw = driver(self.bind)
        views = raw.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"
        ).fetchall()
        return table_names(raw), {row[0] for row in views}

    def macro_names(self) -> set[str]:
        rows = driver(self.bind).execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE NOT internal AND "
            "function_type IN ('macro', 'table_macro') AND database_name = current_database()"
        )
        return {row[0] for row in rows.fetchall()}

    def shapes(self, names: Iterable[str]) -> dict[str, TableShape]:
        return snapshot(driver(self.bind), names)

    def expected_shapes(self, tables: Iterable[sa.Table]) -> dict[str, TableShape]:
        return canonical_shapes(tables)

    def foreign_key_edges(self) -> list[tuple[str, str]]:
        rows = (
            driver(self.bind)
            .execute(
                "SELECT DISTINCT table_name, referenced_table FROM duckdb_constraints() "
                "WHERE constraint_type = 'FOREIGN KEY' AND schema_name = current_schema()"
            )
            .fetchall()
        )
        return [(str(t), str(r)) for t, r in rows]

    def spelled_checks(self, table: sa.Table) -> list[tuple[sa.CheckConstraint, str]]:
        return canonical_check_expressions(table, self.bind.dialect)

    def undeclared_indexes(self, table: str) -> list[str]:
        """``name (columns or expressions)``, as DuckDB stores the index's text."""
        return [
            f"{index.name} {after_table(index.sql)}"
            for index in stored_indexes(driver(self.bind), table)
        ]

    def sequence_names(self) -> set[str]:
        rows = driver(self.bind).execute(
            "SELECT sequence_name FROM duckdb_sequences() "
            "WHERE schema_name = current_schema() AND NOT temporary"
        )
        return {str(row[0]) for row in rows.fetchall()}


def after_table(index_sql: str) -> str:
    """``(a, b)`` of ``CREATE INDEX i ON t(a, b)``: what the index reads, as DuckDB stores it."""
    _, _, rest = index_sql.partition(" ON ")
    return rest[rest.find("(") :] if "(" in rest else rest
