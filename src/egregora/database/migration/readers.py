"""Views and macros that read a table's columns: who a dropped column would break.

DuckDB binds a view or a macro when it is used, not when the table changes:
after ``ALTER TABLE posts DROP COLUMN authors`` a view over ``posts.authors``
fails on its next use ("Referenced column ... not found"), far from the
migration that broke it. PostgreSQL refuses the DROP itself ("other objects
depend on it"), naming the view only in the error's detail. Either way the
migration says so first, naming them (revision v4e drops ``posts.authors``
with a plain ``op.drop_column``; ``create_copy_swap`` refuses the same for
the columns its rebuilds drop, duckdb/impl.refuse_breaking_readers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import view_and_macro_sources
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sqltext import identifiers

#: PostgreSQL: the views whose rewrite rules read a column of a table.
_PG_VIEWS = sa.text(
    "SELECT DISTINCT v.relname, a.attname FROM pg_depend AS d "
    "JOIN pg_rewrite AS r ON r.oid = d.objid "
    "JOIN pg_class AS v ON v.oid = r.ev_class "
    "JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "WHERE d.refobjid = CAST(:table AS regclass) AND d.classid = 'pg_rewrite'::regclass "
    "AND v.oid <> d.refobjid ORDER BY 1, 2"
)


Readers = list[tuple[str, str, list[str]]]


def postgresql_readers(bind: sa.Connection, table: str, columns: Iterable[str]) -> Readers:
    """PostgreSQL: (``view``, name, columns it reads) of each view over ``table.columns``."""
    wanted = sorted({c.lower() for c in columns})
    quoted = bind.dialect.identifier_preparer.quote(table)
    found: dict[str, list[str]] = {}
    for view, column in bind.execute(_PG_VIEWS, {"table": quoted}).all():
        if str(column).lower() in wanted:
            found.setdefault(str(view), []).append(str(column))
    return [("view", view, used) for view, used in sorted(found.items())]


def duckdb_readers(cursor: Any, table: str, columns: Iterable[str]) -> Readers:
    """DuckDB: (``view`` or ``macro``, name, columns it names) of each that reads ``table``
    and names some of ``columns`` (their SQL's identifiers: DuckDB binds them when used)."""
    wanted = sorted({c.lower() for c in columns})
    if not wanted:  # no column to break: the catalog is not read (once per rebuild)
        return []
    readers = []
    for kind, name, sql in sorted(view_and_macro_sources(cursor)):
        tokens = identifiers(sql)
        used = [c for c in wanted if c in tokens]
        if table.lower() in tokens and used:
            readers.append((kind, name, used))
    return readers


def refuse_dropping_read_columns(readers: Readers, table: str, revision: str) -> None:
    """Refuse, naming them, when views or macros (``readers``) read columns about to be dropped."""
    if not readers:
        return
    named = "; ".join(f"the {kind} {name} reads {', '.join(used)}" for kind, name, used in readers)
    dropped = ", ".join(sorted({c for _, _, used in readers for c in used}))
    raise InvalidOperation(
        f"Revision {revision.split()[0]} drops {table}.{dropped}, and {named}: the drop would "
        "break them. Nothing was changed. They are not the schema's, so the migration does "
        "not touch them: drop them (or re-create them without those columns) before the "
        "upgrade, and re-create them after it."
    )
