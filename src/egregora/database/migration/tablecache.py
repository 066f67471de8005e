"""A run's reflected tables: every table read in one batch, read again after a change.

SQLAlchemy reflects one table with about ten catalog queries, whatever the
database's size: measured on the benchmark's V3 file (DuckDB 2.0.1), six
tables one by one took 0.22-0.28 s, all six in one ``MetaData.reflect``
0.05 s. A held DuckDB run (copyswap/held.py) reflects each table its
rebuilds meet; it reads them here instead: the first one asked for reads
them all, and what was read serves until a statement may have changed the
catalog (:meth:`TableCache.after`, for every statement through SQLAlchemy)
or the run's own code says it has (:meth:`TableCache.forget`: a rebuild's
statements, which go to the driver directly). A statement through SQLAlchemy
that names tables makes only those (and the tables that reference them) be
read again: v4e's ``CREATE TABLE post_authors`` and its ``DROP COLUMN`` on
posts otherwise had every table reflected once more.

Each answer is a copy, with the tables it references, in a MetaData of its
own: what :func:`.catalog.reflect` gives, and a caller may change it.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from egregora.database.migration.copyswap.barriers import READS_AND_WRITES
from egregora.database.migration.definitions import referred_table
from egregora.database.migration.sqltext import identifiers

__all__ = ["TableCache", "changed_tables"]

#: whose rows change what reflection says (names.py: the constraint names DuckDB forgets)
_NAME_RECORD = "egregora_constraint_names"
#: words of a statement that may change tables it does not name
_UNNAMED = re.compile(r"\b(SCHEMA|CASCADE|ATTACH|DETACH|USE|IMPORT|ROLLBACK|DATABASE)\b")


def changed_tables(statement: str) -> set[str] | None:
    """The tables whose reflection ``statement`` may change (lower case); None: any table.

    None for a write to the constraint name record (reflection reads its
    rows) or a statement that reaches tables it need not name (a schema,
    CASCADE, another database); none for a read or a write of rows; else
    every name the statement holds (when in doubt, a table).
    """
    text = statement.lstrip().upper()
    if _NAME_RECORD.upper() in text:
        return None
    if text.startswith(READS_AND_WRITES):  # they change no table's definition
        return set()
    return None if _UNNAMED.search(text) else identifiers(statement)


class TableCache:
    """The tables of one connection's current schema, as last reflected together."""

    def __init__(self) -> None:
        self._tables: dict[str, sa.Table] | None = None

    def get(self, connection: sa.Connection, name: str) -> sa.Table:
        """Table ``name`` (reflected with every other table on the first call after a change)."""
        if self._tables is None:
            self._tables = _reflected(connection)
        if name not in self._tables:  # made since, or not read yet: this one alone
            self._tables[name] = sa.Table(name, sa.MetaData(), autoload_with=connection)
        return _copied(self._tables, name)

    def after(self, statement: str) -> None:
        """A statement ran through SQLAlchemy: the tables it may have changed are read again."""
        names = changed_tables(statement)
        if names is None:
            self.forget()
        elif names and self._tables is not None:
            self._forget_tables(names)

    def forget(self) -> None:
        """The catalog may have changed: the next question reads it again."""
        self._tables = None

    def _forget_tables(self, names: set[str]) -> None:
        """Tables ``names`` (lower case) and those that reference them, directly or not:
        an answer carries the tables it references."""
        assert self._tables is not None
        stale = {t for t in self._tables if t.lower() in names}
        while True:
            more = {
                name
                for name, table in self._tables.items()
                if name not in stale
                and any(referred_table(fk) in stale for fk in table.foreign_key_constraints)
            }
            if not more:
                break
            stale |= more
        for name in stale:
            del self._tables[name]


def _reflected(connection: sa.Connection) -> dict[str, sa.Table]:
    """Every table of the current schema, reflected together; {} when one can't be.

    A table SQLAlchemy can't make sense of fails the batch: then each is
    reflected on its own, as without the cache, and fails only where it is
    asked for. An error from the database itself is the run's: DuckDB has
    aborted the transaction (an interrupt from another thread,
    ``connection.interrupt()``, arrives as one).
    """
    meta = sa.MetaData()
    try:
        meta.reflect(connection)  # the tables the dialect lists (not its own record)
    except sa.exc.DBAPIError:
        raise
    except sa.exc.SQLAlchemyError:
        return {}
    return dict(meta.tables)


def _copied(tables: dict[str, sa.Table], name: str) -> sa.Table:
    """Table ``name`` and the tables it references, transitively, in a new MetaData."""
    meta = sa.MetaData()
    waiting = [tables[name]]
    while waiting:
        table = waiting.pop()
        if table.name in meta.tables:
            continue
        table.to_metadata(meta)
        for fk in table.foreign_key_constraints:
            parent = referred_table(fk)  # as cached, else as reflected with the table
            found = tables.get(parent, table.metadata.tables.get(parent))
            if found is not None and parent not in meta.tables:
                waiting.append(found)
    return meta.tables[name]
