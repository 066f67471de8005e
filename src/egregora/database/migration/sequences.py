"""The sequences duckdb-sqlalchemy backs integer primary keys with, asked of it in one place.

duckdb-sqlalchemy's CREATE TABLE gives an autoincrement integer primary key a
sequence named after the table (DuckDB has no SERIAL). A rebuild must create
that sequence, point the copy's default at it and move it past the copied
keys, so it must know the dialect's rule and name exactly. The dialect keeps
both in private helpers; this module is the only one that calls them, so a
change of duckdb-sqlalchemy breaks here, in one place.
"""

from __future__ import annotations

import sqlalchemy as sa
from duckdb_sqlalchemy import (
    _column_needs_implicit_sequence as _needs_sequence,
)
from duckdb_sqlalchemy import (
    _implicit_sequence_ddl_name as _sequence_ddl_name,
)

__all__ = ["implicit_sequence", "implicit_sequence_name"]


def implicit_sequence(column: sa.Column[object]) -> bool:
    """Whether duckdb-sqlalchemy fills ``column`` from a sequence of its own making."""
    return bool(column.table is not None and _needs_sequence(column))


def implicit_sequence_name(
    preparer: sa.sql.compiler.IdentifierPreparer, column: sa.Column[object]
) -> str:
    """That sequence's name, quoted as the dialect's DDL writes it."""
    return str(_sequence_ddl_name(preparer, column))
