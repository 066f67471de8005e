"""Views and macros that read a table's columns: who a dropped column would break.

DuckDB binds a view or a macro when it is used, not when the table changes:
after ``ALTER TABLE posts DROP COLUMN authors`` a view over ``posts.authors``
fails on its next use ("Referenced column ... not found"), far from the
migration that broke it. PostgreSQL refuses the DROP itself ("other objects
depend on it"), naming the view only in the error's detail. Either way the
migration says so first, naming them (revision v4e drops ``posts.authors``
with a plain ``op.drop_column``; ``create_copy_swap`` refuses the same for
the columns its rebuilds drop, copyswap/engine.refuse_breaking_readers).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.migration.catalog import driver, view_and_macro_sources
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


def readers_of(
    bind: sa.Connection, table: str, columns: Iterable[str]
) -> list[tuple[str, str, list[str]]]:
    """(``view`` or ``macro``, name, columns it reads) of each reader of ``table.columns``."""
    wanted = sorted({c.lower() for c in columns})
    if bind.dialect.name != "duckdb":
        quoted = bind.dialect.identifier_preparer.quote(table)
        found: dict[str, list[str]] = {}
        for view, column in bind.execute(_PG_VIEWS, {"table": quoted}).all():
            if str(column).lower() in wanted:
                found.setdefault(str(view), []).append(str(column))
        return [("view", view, used) for view, used in sorted(found.items())]
    readers = []
    for kind, name, sql in sorted(view_and_macro_sources(driver(bind))):
        tokens = identifiers(sql)
        used = [c for c in wanted if c in tokens]
        if table.lower() in tokens and used:
            readers.append((kind, name, used))
    return readers


def refuse_dropping_read_columns(
    bind: sa.Connection, table: str, columns: Iterable[str], revision: str
) -> None:
    """Refuse, naming them, when views or macros read columns about to be dropped."""
    readers = readers_of(bind, table, columns)
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
