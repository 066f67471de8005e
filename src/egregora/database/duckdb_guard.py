"""The append-only guard for a raw DuckDB connection, and so for ibis on DuckDB.

DuckDB can't protect a table from its own writer: it has no triggers, rules,
GRANT, REVOKE, roles or row-level policies (each is a parser error on 1.4.3
and 2.0.1, ``tests/test_append_only_writers.py``). What it does enforce is
whole-database: a connection opened ``read_only=True`` refuses every write.
So a process that only reads should open the file read-only, and the writer
guards its connection here:

    con = guard_duckdb(duckdb.connect("egregora.duckdb"))
    con.execute("UPDATE journals SET title = 'x'")   # AppendOnlyViolation, nothing sent

:class:`GuardedConnection` checks every SQL text before DuckDB sees it
(``execute``, ``executemany``, ``sql``, ``query``, ``from_query``), with the same
check as the SQLAlchemy guard (:func:`egregora.database.guard.changed_append_only_table`):
UPDATE, DELETE, TRUNCATE, ``INSERT OR REPLACE``, ``ON CONFLICT DO UPDATE`` and a
MERGE that updates or deletes, aimed at an append-only table, are refused;
reads, plain INSERTs and every other table pass. The relational API's one
writer, ``table(name).update(...)``, is refused on those tables too, and
``cursor()`` and ``duplicate()`` give guarded connections. Everything else is
the connection's own. What it is not: a permission. Whoever holds the raw
connection (``GuardedConnection.unguarded``), another process or the DuckDB
CLI is not checked; nor is DDL (DROP TABLE, CREATE OR REPLACE TABLE), which is
the migrations' business.

No Alembic and no ibis here: the application imports this module at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from egregora.database.guard import (
    AppendOnlyViolation,
    append_only_tables,
    changed_append_only_table,
)

#: the connection methods that take SQL text first
_SQL_METHODS = frozenset({"execute", "executemany", "sql", "query", "from_query"})
#: the connection methods that give another connection to the same database
_NEW_CONNECTIONS = frozenset({"cursor", "duplicate"})


class GuardedConnection:
    """A DuckDB connection that refuses to change rows of append-only tables.

    Pass it wherever a ``duckdb.DuckDBPyConnection`` goes that calls methods
    on it (``ibis.duckdb.from_connection``, the application's own code).
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, tables: frozenset[str]) -> None:
        self.unguarded = connection
        self.tables = tables

    def check(self, query: object) -> None:
        """Raise :class:`AppendOnlyViolation` if ``query`` changes rows of a guarded table."""
        found = changed_append_only_table(_text(query), self.tables)
        if found is not None:
            raise AppendOnlyViolation(*found)

    def table(self, name: str) -> Any:
        relation = self.unguarded.table(name)
        last = name.rpartition(".")[2].strip('"').casefold()
        guarded = {t.casefold(): t for t in self.tables}
        return _ReadOnlyRelation(relation, guarded[last]) if last in guarded else relation

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.unguarded, name)
        if name in _SQL_METHODS:
            return self._checked(attribute)
        if name in _NEW_CONNECTIONS:
            return lambda *args, **kw: GuardedConnection(attribute(*args, **kw), self.tables)
        return attribute

    def _checked(self, method: Any) -> Any:
        def call(query: object, *args: Any, **kw: Any) -> Any:
            self.check(query)
            result = method(query, *args, **kw)
            # execute() answers the connection itself: keep the caller on the guarded one
            return self if result is self.unguarded else result

        return call

    def __enter__(self) -> GuardedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unguarded.close()


class _ReadOnlyRelation:
    """``table(name)`` of an append-only table: everything but ``update``."""

    def __init__(self, relation: Any, table: str) -> None:
        self._relation = relation
        self._table = table

    def update(self, *args: Any, **kw: Any) -> None:
        raise AppendOnlyViolation("UPDATE", self._table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._relation, name)


def _text(query: object) -> str:
    """The SQL of what DuckDB's execute takes: text, or a parsed Statement."""
    return query if isinstance(query, str) else str(getattr(query, "query", query))


def guard_duckdb(
    connection: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None
) -> GuardedConnection:
    """``connection``, refusing statements that change rows of append-only tables.

    ``tables``: names; default, the append-only tables of
    :mod:`egregora.database.schemas` (journals, annotations).
    """
    if isinstance(tables, str):
        raise TypeError("tables must be an iterable of names, not one string")
    names = append_only_tables() if tables is None else frozenset(tables)
    return GuardedConnection(connection, names)


__all__ = ["GuardedConnection", "guard_duckdb"]
