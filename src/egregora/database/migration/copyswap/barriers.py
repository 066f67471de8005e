"""Which held rebuilds a statement must see written first: pure rules, no database.

A run holds its DuckDB rebuilds back (:mod:`.pending`); a statement that
reads or writes a held table is a *barrier*. Decided from the statement's
text, as identifiers (quoted or bare, any case):

- the table, or its ``<table>_quarantine`` table, named in the statement;
- the table read by a view or macro the statement names, directly or
  through other views and macros (found by trying it as a user: through
  Egregora's own ``documents_view``, journals read as before its rebuild);
- any catalog read: every held table (what exists is what the revisions
  before left).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from egregora.database.migration.copyswap.model import QUARANTINE_SUFFIX
from egregora.database.migration.sqltext import identifiers

__all__ = [
    "Barrier",
    "CATALOG",
    "READS_AND_WRITES",
    "barrier",
    "defines_reader",
    "may_change_readers",
    "readers_of",
]

#: names a statement reads the catalog through (SQLAlchemy's inspector, a
#: revision's own query)
CATALOG = frozenset(
    {
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_indexes",
        "duckdb_views",
        "duckdb_dependencies",
        "information_schema",
        "pg_catalog",
    }
)
#: how statements that create, change or drop no view or macro begin
READS_AND_WRITES = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "SET", "(")
#: words of a statement that may create, change or drop a view or macro
_DEFINES = re.compile(
    r"\s*CREATE\s+(OR\s+REPLACE\s+)?((TEMP|TEMPORARY)\s+)?(VIEW|MACRO|FUNCTION)\b", re.IGNORECASE
)
_READERS_DDL = re.compile(
    r"\b(VIEW|MACRO|FUNCTION|SCHEMA|CASCADE|ATTACH|DETACH|USE|IMPORT|ROLLBACK)\b"
)


@dataclass(frozen=True)
class Barrier:
    """The held tables a statement needs written, and whether it reads the catalog."""

    tables: frozenset[str]
    reads_catalog: bool


def barrier(statement: str, held: Iterable[str], readers: Mapping[str, set[str]]) -> Barrier:
    """What ``statement`` needs written of the ``held`` tables.

    ``readers``: each view's and macro's name (lower case) -> the
    identifiers its SQL holds (:func:`readers_of`).
    """
    names = _through(identifiers(statement), readers)
    tables = {t for t in held if {t.lower(), (t + QUARANTINE_SUFFIX).lower()} & names}
    return Barrier(frozenset(tables), bool(names & CATALOG))


def may_change_readers(statement: str) -> bool:
    """Whether ``statement`` may create, change or drop a view or macro.

    Any statement but a read or a write that names a view, a macro, a
    function or a schema, CASCADE, or a whole database (ATTACH, DETACH, USE,
    IMPORT), as a word anywhere: a CREATE TABLE or an ALTER TABLE keeps them.
    """
    text = statement.lstrip().upper()
    return not text.startswith(READS_AND_WRITES) and bool(_READERS_DDL.search(text))


def defines_reader(statement: str) -> bool:
    """Whether ``statement`` creates a view or macro: it reads the tables' columns, no row.

    DuckDB binds a view's query when it is created (the columns must exist),
    and reads the rows only when the view is used.
    """
    return bool(_DEFINES.match(statement))


def readers_of(sources: Iterable[tuple[str, str, str]]) -> dict[str, set[str]]:
    """(kind, name, SQL) of views and macros (catalog.view_and_macro_sources) -> readers."""
    return {name.lower(): identifiers(sql) for _, name, sql in sources}


def _through(names: set[str], readers: Mapping[str, set[str]]) -> set[str]:
    """``names``, and every name the views and macros among them read, transitively."""
    seen = set(names)
    waiting = [n for n in names if n in readers]
    while waiting:
        for name in readers[waiting.pop()] - seen:
            seen.add(name)
            if name in readers:
                waiting.append(name)
    return seen
