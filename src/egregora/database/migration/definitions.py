"""Questions about SQLAlchemy table definitions that SQLAlchemy's API leaves scattered.

Pure functions over ``sa.Table``: no database, no Alembic. Comparison,
planning, preflight and rendering all ask them, so they agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from egregora.database.foreign_keys import deferrable
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sqltext import normalize_sql


def all_checks(table: sa.Table) -> list[sa.CheckConstraint]:
    """The table's CHECKs, with those declared on a column (``Column(..., CheckConstraint())``).

    SQLAlchemy keeps a column-level CHECK in ``column.constraints``, not in
    ``table.constraints``: whoever reads only the latter misses it.
    """
    found = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
    return found + [c for c in column_checks(table) if c not in found]


def column_checks(table: sa.Table) -> list[sa.CheckConstraint]:
    """The CHECKs declared on the table's columns (rendered as table-level ones)."""
    return [
        c
        for column in table.columns
        for c in column.constraints
        if isinstance(c, sa.CheckConstraint) and c not in table.constraints
    ]


def checks_changed_in_text(previous: sa.Table, target: sa.Table) -> set[str]:
    """Names of CHECKs both definitions declare, whose expressions differ as written.

    Offline (``--sql``) no server can spell the two expressions: a revision's
    own definitions say that a CHECK keeping its name changed (v4i widens
    chk_tasks_task_type; PostgreSQL's script then drops and adds it).
    """
    old = {str(c.name): normalize_sql(str(c.sqltext)) for c in all_checks(previous) if c.name}
    return {
        str(c.name)
        for c in all_checks(target)
        if c.name and str(c.name) in old and old[str(c.name)] != normalize_sql(str(c.sqltext))
    }


def unique_indexes(table: sa.Table) -> list[tuple[str, list[str]]]:
    """(name, columns) of the UNIQUE indexes over plain columns: rules like UNIQUE."""
    found = []
    for index in table.indexes:
        columns = [c.name for c in index.columns]
        if index.unique and columns and len(columns) == len(index.expressions):
            found.append((str(index.name), columns))
    return sorted(found)


def sorted_checks(table: sa.Table) -> list[sa.CheckConstraint]:
    """Every CHECK of ``table`` (table- or column-level), in a stable order."""
    return sorted(all_checks(table), key=lambda c: (str(c.name), str(c.sqltext)))


def sorted_fks(table: sa.Table) -> list[sa.ForeignKeyConstraint]:
    """The FOREIGN KEYs of ``table`` in a stable order (SQLAlchemy keeps them in a set).

    Found by trying the operation as a user: a table with two FOREIGN KEYs got
    them in another order in each ``--sql`` script.
    """
    return sorted(table.foreign_key_constraints, key=lambda fk: repr(fk_signature(fk)))


def key_constraints(table: sa.Table) -> list[tuple[str, str, list[str]]]:
    """(kind, name, columns) of the PRIMARY KEY and UNIQUE constraints, PK first."""
    keys: list[tuple[str, str, list[str]]] = []
    if table.primary_key.columns:
        name = str(table.primary_key.name or f"pk_{table.name}")
        keys.append(("PRIMARY KEY", name, [c.name for c in table.primary_key.columns]))
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    for unique in sorted(uniques, key=lambda u: [c.name for c in u.columns]):
        columns = [c.name for c in unique.columns]
        keys.append(("UNIQUE", str(unique.name or f"uq_{table.name}_{'_'.join(columns)}"), columns))
    return keys


def key_columns(table: sa.Table) -> list[list[str]]:
    """The columns of each PRIMARY KEY and UNIQUE constraint."""
    return [columns for _, _, columns in key_constraints(table)]


def referred_table(fk: sa.ForeignKeyConstraint) -> str:
    """The table a FOREIGN KEY references, also when it is not in the same MetaData."""
    element = fk.elements[0]
    try:
        return str(element.column.table.name)
    except (sa.exc.NoReferencedTableError, sa.exc.NoReferencedColumnError):
        return str(element._column_tokens[1])  # noqa: SLF001  (schema, table, column)


def referred_columns(fk: sa.ForeignKeyConstraint) -> list[str]:
    """The columns a FOREIGN KEY references, also when their table is not in the MetaData."""
    names = []
    for element in fk.elements:
        try:
            names.append(str(element.column.name))
        except (sa.exc.NoReferencedTableError, sa.exc.NoReferencedColumnError):
            names.append(str(element._column_tokens[-1]))  # noqa: SLF001
    return names


def fk_reference(fk: sa.ForeignKeyConstraint) -> tuple[object, ...]:
    """Which rows a FOREIGN KEY ties: its columns, the table and columns referenced."""
    return (tuple(c.name for c in fk.columns), referred_table(fk), tuple(referred_columns(fk)))


def fk_signature(fk: sa.ForeignKeyConstraint) -> tuple[object, ...]:
    """What a FOREIGN KEY is, whatever its name: what it ties, and whether it is
    deferrable (then DuckDB leaves it out of the table: changing that is a change)."""
    return (*fk_reference(fk), deferrable(fk))


def fk_name(table: str, fk: sa.ForeignKeyConstraint) -> str:
    """A FOREIGN KEY's name, or the one this project gives an unnamed one."""
    columns = "_".join(c.name for c in fk.columns)
    return str(fk.name or f"fk_{table}_{columns}_{referred_table(fk)}")


#: A bare lower-case identifier: as a column_map value, the old column of that name
_BARE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def plain_column(value: object) -> str | None:
    """The old column a column_map value only moves (``"old"``, ``sa.column("old")``), else None.

    Lower case only: a bare ``Title`` means ``title`` to PostgreSQL, which
    folds unquoted names, so it is not taken for a column named ``Title``.
    """
    if isinstance(value, sa.sql.elements.ColumnClause) and value.table is None:
        return str(value.name)
    if isinstance(value, str) and _BARE_NAME.match(value.strip()):
        return value.strip()
    return None


def dropped_columns(
    previous: sa.Table, target: sa.Table, column_map: Mapping[str, object]
) -> list[str]:
    """Columns of ``previous`` whose values ``target`` loses: neither kept nor mapped from."""
    kept = set(target.columns.keys())
    sources = {plain_column(v) for v in column_map.values()}
    return [c for c in previous.columns.keys() if c not in kept | sources]  # noqa: SIM118


@dataclass(frozen=True)
class StoredTable:
    """A DuckDB table exactly as DuckDB keeps it: enough to recreate it unchanged.

    DuckDB stores each table's and index's own ``CREATE`` text
    (``duckdb_tables().sql``, ``duckdb_indexes().sql``). Recreating a table
    from SQLAlchemy's reflection instead loses detail (measured on DuckDB
    2.0: ``TIMESTAMP_NS`` becomes microseconds, ``TIMESTAMP_S`` and
    ``TIMESTAMP_MS`` become ``TIMESTAMP``, ``COLLATE NOCASE`` disappears,
    generated columns, expression indexes and ``VARINT`` can't be recreated).
    Read by ``catalog.stored_tables``; planned from by the DuckDB rebuild.
    """

    name: str
    create_sql: str
    index_sql: tuple[str, ...] = ()
    generated: frozenset[str] = frozenset()  # columns computed by the table itself
    comment: str | None = None
    column_comments: tuple[tuple[str, str], ...] = ()


def creation_order(tables: Sequence[sa.Table]) -> list[sa.Table]:
    """Parents before children among ``tables`` (by the FKs between them)."""
    remaining = {t.name: t for t in tables}
    ordered: list[sa.Table] = []
    while remaining:
        ready = [
            t
            for t in remaining.values()
            if not any(
                referred_table(fk) in remaining and referred_table(fk) != t.name
                for fk in t.foreign_key_constraints
            )
        ]
        if not ready:
            raise InvalidOperation(
                "create_copy_swap: the referencing tables "
                f"{', '.join(sorted(remaining))} reference each other in a cycle, which "
                "DuckDB can't rebuild. Break the cycle first."
            )
        for table in sorted(ready, key=lambda t: t.name):
            ordered.append(remaining.pop(table.name))
    return ordered
