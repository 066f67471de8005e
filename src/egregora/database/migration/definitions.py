"""Questions about SQLAlchemy table definitions that SQLAlchemy's API leaves scattered.

Pure functions over ``sa.Table``: no database, no Alembic. Comparison,
planning, preflight and rendering all ask them, so they agree.
"""

from __future__ import annotations

import sqlalchemy as sa


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


def unique_indexes(table: sa.Table) -> list[tuple[str, list[str]]]:
    """(name, columns) of the UNIQUE indexes over plain columns: rules like UNIQUE."""
    found = []
    for index in table.indexes:
        columns = [c.name for c in index.columns]
        if index.unique and columns and len(columns) == len(index.expressions):
            found.append((str(index.name), columns))
    return sorted(found)
