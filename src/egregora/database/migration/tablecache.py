"""A run's reflected tables: every table read in one batch, read again after a change.

SQLAlchemy reflects one table with about ten catalog queries, whatever the
database's size: measured on the benchmark's V3 file (DuckDB 2.0.1), six
tables one by one took 0.22-0.28 s, all six in one ``MetaData.reflect``
0.05 s. A held DuckDB run (copyswap/held.py) reflects each table its
rebuilds meet; it reads them here instead: the first one asked for reads
them all, and what was read serves until a statement may have changed the
catalog (:meth:`TableCache.after`, for every statement through SQLAlchemy)
or the run's own code says it has (:meth:`TableCache.forget`: a rebuild's
statements, which go to the driver directly).

Each answer is a copy, with the tables it references, in a MetaData of its
own: what :func:`.catalog.reflect` gives, and a caller may change it.
"""

from __future__ import annotations

import sqlalchemy as sa

from egregora.database.migration.definitions import referred_table

__all__ = ["TableCache", "changes_catalog"]

#: how statements that change no table's definition begin
_READS_AND_WRITES = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "SET", "(")
#: whose rows change what reflection says (names.py: the constraint names DuckDB forgets)
_NAME_RECORD = "egregora_constraint_names"


def changes_catalog(statement: str) -> bool:
    """Whether ``statement`` may change what reflecting a table gives.

    Anything but a read or a write of rows; a write of the constraint name
    record too, whose rows reflection reads.
    """
    text = statement.lstrip().upper()
    return not text.startswith(_READS_AND_WRITES) or _NAME_RECORD.upper() in text


class TableCache:
    """The tables of one connection's current schema, as last reflected together."""

    def __init__(self) -> None:
        self._tables: dict[str, sa.Table] | None = None

    def get(self, connection: sa.Connection, name: str) -> sa.Table:
        """Table ``name`` (reflected with every other table on the first call after a change)."""
        if self._tables is None:
            self._tables = _reflected(connection)
        if name not in self._tables:  # not a table when last read: as SQLAlchemy says now
            return sa.Table(name, sa.MetaData(), autoload_with=connection)
        return _copied(self._tables, name)

    def after(self, statement: str) -> None:
        """A statement ran through SQLAlchemy: what it may have changed is read again."""
        if changes_catalog(statement):
            self.forget()

    def forget(self) -> None:
        """The catalog may have changed: the next question reads it again."""
        self._tables = None


def _reflected(connection: sa.Connection) -> dict[str, sa.Table]:
    """Every table of the current schema, reflected together; {} when one can't be.

    A table SQLAlchemy can't reflect fails the batch: then each is reflected
    on its own, as without the cache, and fails only where it is asked for.
    """
    meta = sa.MetaData()
    try:
        meta.reflect(connection)  # the tables the dialect lists (not its own record)
    except sa.exc.SQLAlchemyError:
        return {}
    return dict(meta.tables)


def _copied(tables: dict[str, sa.Table], name: str) -> sa.Table:
    """Table ``name`` and the tables it references, transitively, in a new MetaData."""
    meta = sa.MetaData()
    waiting = [name]
    while waiting:
        table = tables[waiting.pop()]
        if table.name in meta.tables:
            continue
        table.to_metadata(meta)
        for fk in table.foreign_key_constraints:
            parent = referred_table(fk)
            if parent in tables and parent not in meta.tables:
                waiting.append(parent)
    return meta.tables[name]
