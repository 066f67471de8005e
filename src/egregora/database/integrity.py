"""The FOREIGN KEYs a database does not enforce itself, checked: Django's foreign_key_check.

On DuckDB a deferrable FOREIGN KEY is left out of the table's DDL
(:mod:`egregora.database.foreign_keys` says why, with the measurements):
the application may then delete and re-insert a cached profile or post.
:func:`foreign_key_violations` finds the rows such a key would refuse: rows
whose referencing columns are all set and match no row of the referenced
table. ``alembic check`` runs it (and fails on what it finds), a rebuild of
the table judges it like any new rule (reported, or quarantined with ``-x
on_violation=quarantine``), and the application may call it, for example
after its start-up caches ran::

    from egregora.database.integrity import foreign_key_violations
    for orphans in foreign_key_violations(ibis_backend.con):  # or a SQLAlchemy connection
        log.warning(orphans.describe())

On PostgreSQL every key is enforced (at COMMIT for a deferrable one), so the
check reads nothing there and finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect as DuckDBDialect

from egregora.database import schemas
from egregora.database.foreign_keys import enforced_by

#: How many missing keys a violation shows.
SAMPLE_SIZE = 5

Rows = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Orphans:
    """Rows of ``table`` whose ``columns`` reference no row of ``referred_table``."""

    constraint: str
    table: str
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    rows: int
    #: up to SAMPLE_SIZE of the missing keys, in order
    missing: tuple[tuple[Any, ...], ...]

    def describe(self) -> str:
        """One line: the key, how many rows, which keys are missing."""
        shown = ", ".join(
            repr(key[0]) if len(key) == 1 else repr(tuple(key)) for key in self.missing
        )
        return (
            f"{self.table}({', '.join(self.columns)}) -> "
            f"{self.referred_table}({', '.join(self.referred_columns)}) "
            f"[{self.constraint}]: {self.rows} row{'s' if self.rows != 1 else ''} "
            f"reference{'' if self.rows != 1 else 's'} no row (missing: {shown})"
        )


def unenforced_keys(
    metadata: sa.MetaData, dialect_name: str
) -> list[tuple[sa.Table, sa.ForeignKeyConstraint]]:
    """The metadata's FOREIGN KEYs that a ``dialect_name`` database does not enforce."""
    return [
        (table, fk)
        for table in metadata.sorted_tables
        for fk in sorted(table.foreign_key_constraints, key=lambda f: str(f.name))
        if not enforced_by(fk, dialect_name)
    ]


def foreign_key_violations(bind: Any, metadata: sa.MetaData | None = None) -> list[Orphans]:
    """Every FOREIGN KEY of ``metadata`` (the schema's by default) that the database does
    not enforce and that some rows break, in table order. Keys whose tables or columns
    the database lacks (it is at another revision) are skipped.

    ``bind``: a SQLAlchemy ``Connection`` or ``Engine`` (DuckDB or PostgreSQL), or a
    ``duckdb`` connection (what ibis's DuckDB backend holds as ``.con``). It only reads.
    """
    with _reader(bind) as (dialect, rows):
        keys = unenforced_keys(metadata or schemas.metadata, dialect.name)
        if not keys:
            return []
        present: dict[str, set[str]] = {}
        for table_name, column_name in rows(_COLUMNS):
            present.setdefault(str(table_name), set()).add(str(column_name))
        found = []
        for table, fk in keys:
            parent = fk.elements[0].column.table.name
            if {c.name for c in fk.columns} <= present.get(table.name, set()) and {
                e.column.name for e in fk.elements
            } <= present.get(parent, set()):
                orphans = _orphans(table, fk, dialect, rows)
                if orphans is not None:
                    found.append(orphans)
        return found


#: The columns of the current schema's tables, the same text on DuckDB and PostgreSQL.
_COLUMNS = (
    "SELECT c.table_name, c.column_name FROM information_schema.columns AS c "
    "JOIN information_schema.tables AS t ON t.table_schema = c.table_schema "
    "AND t.table_name = c.table_name "
    "WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
)


def _orphans(
    table: sa.Table, fk: sa.ForeignKeyConstraint, dialect: sa.Dialect, rows: Rows
) -> Orphans | None:
    q = dialect.identifier_preparer.quote
    columns = [c.name for c in fk.columns]
    referred = [e.column.name for e in fk.elements]
    parent = fk.elements[0].column.table.name
    keys = ", ".join(f"c.{q(c)}" for c in columns)
    # MATCH SIMPLE, as both engines enforce it: a row with a NULL in the key passes
    where = " AND ".join(f"c.{q(c)} IS NOT NULL" for c in columns)
    match = " AND ".join(f"p.{q(r)} = c.{q(c)}" for c, r in zip(columns, referred, strict=True))
    orphan_rows = (
        f"FROM {q(table.name)} AS c WHERE {where} "
        f"AND NOT EXISTS (SELECT 1 FROM {q(parent)} AS p WHERE {match})"
    )
    count = int(rows(f"SELECT count(*) {orphan_rows}")[0][0])
    if not count:
        return None
    missing = rows(f"SELECT DISTINCT {keys} {orphan_rows} ORDER BY {keys} LIMIT {SAMPLE_SIZE}")
    return Orphans(
        constraint=str(fk.name),
        table=table.name,
        columns=tuple(columns),
        referred_table=parent,
        referred_columns=tuple(referred),
        rows=count,
        missing=tuple(tuple(r) for r in missing),
    )


@contextmanager
def _reader(bind: Any) -> Iterator[tuple[sa.Dialect, Rows]]:
    """The bind's dialect, and a function that runs a query and returns its rows."""
    if isinstance(bind, sa.Engine):
        with bind.connect() as connection:
            yield connection.dialect, lambda sql: connection.exec_driver_sql(sql).all()
    elif isinstance(bind, sa.Connection):
        yield bind.dialect, lambda sql: bind.exec_driver_sql(sql).all()
    else:  # a DB-API connection of DuckDB's own client
        yield DuckDBDialect(), lambda sql: bind.execute(sql).fetchall()
