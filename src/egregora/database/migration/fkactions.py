"""FOREIGN KEY options DuckDB can't parse: refused before any change, saying what to do.

Measured on DuckDB 2.0.1, each option declared in ``CREATE TABLE``, at the
table's end and on the column (docs/writing-migrations.md, DuckDB's rules):

- ``ON DELETE`` / ``ON UPDATE`` ``CASCADE``, ``SET NULL``, ``SET DEFAULT``:
  "Parser Error: FOREIGN KEY constraints cannot use CASCADE, SET NULL or SET
  DEFAULT". Alembic and SQLAlchemy pass them through, so without this check
  autogenerate writes the revision and the upgrade fails on DuckDB's parser.
- ``RESTRICT`` and ``NO ACTION``: accepted, not kept in the catalog, and
  enforced as DuckDB always does (deleting a referenced row, or changing its
  key, is refused).
- ``DEFERRABLE``, ``NOT DEFERRABLE``, ``INITIALLY ...``, ``MATCH ...``: a
  syntax error. A deferrable key (``deferrable=True``, or ``initially=
  "DEFERRED"``) is not refused: DuckDB's DDL leaves it out and
  :mod:`egregora.database.integrity` checks it (:mod:`egregora.database.foreign_keys`);
  its ``ON DELETE`` / ``ON UPDATE`` actions still are, since nothing would
  carry them out.

PostgreSQL runs all of them; only DuckDB's runs are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.foreign_keys import CANT_DEFER, enforced_by
from egregora.database.migration.definitions import referred_columns, referred_table
from egregora.database.migration.errors import InvalidOperation

#: ON DELETE / ON UPDATE actions DuckDB 2.0.1 parses (and enforces: its only behaviour)
ACCEPTED_ACTIONS = frozenset({"RESTRICT", "NO ACTION"})

NO_REVISION = "No revision was written."
NOTHING_CHANGED = "Nothing was changed."


def unparsable_options(fk: sa.ForeignKeyConstraint) -> list[str]:
    """The options of ``fk`` that DuckDB can't parse, spelled as in SQL."""
    found = [
        f"{clause} {spelled}"
        for clause, action in (("ON DELETE", fk.ondelete), ("ON UPDATE", fk.onupdate))
        if action and (spelled := " ".join(action.upper().split())) not in ACCEPTED_ACTIONS
    ]
    if not enforced_by(fk, CANT_DEFER):
        # a deferrable key is left out of DuckDB's DDL and checked by
        # egregora.database.integrity (foreign_keys.py): its DEFERRABLE is kept
        return found
    if fk.deferrable is not None:
        found.append("DEFERRABLE" if fk.deferrable else "NOT DEFERRABLE")
    if fk.initially:
        found.append(f"INITIALLY {fk.initially.upper()}")
    if fk.match:
        found.append(f"MATCH {fk.match.upper()}")
    return found


def refuse_on_duckdb(tables: Iterable[sa.Table], outcome: str) -> None:
    """Refuse the first FOREIGN KEY of ``tables`` that DuckDB can't parse; ``outcome``: what
    became of the command (:data:`NO_REVISION`, :data:`NOTHING_CHANGED`)."""
    for table in tables:
        for fk in sorted(table.foreign_key_constraints, key=lambda f: [c.name for c in f.columns]):
            options = unparsable_options(fk)
            if options:
                raise InvalidOperation(_refusal(table, fk, options, outcome))


def _refusal(table: sa.Table, fk: sa.ForeignKeyConstraint, options: list[str], outcome: str) -> str:
    columns = ", ".join(f"{table.name}.{c.name}" for c in fk.columns)
    referred = f"{referred_table(fk)} ({', '.join(referred_columns(fk))})"
    return (
        f"The FOREIGN KEY {columns} REFERENCES {referred} has {' and '.join(options)}, "
        "which DuckDB can't parse: it has no cascading or deferred FOREIGN KEYs (measured "
        "on DuckDB 2.0.1, it accepts ON DELETE / ON UPDATE RESTRICT and NO ACTION only, "
        "and always refuses to delete or re-key a referenced row). "
        f"{outcome} Leave ondelete=, onupdate=, deferrable=, initially= and match= out of "
        "the metadata (or write 'RESTRICT'), and delete or update the referencing rows "
        "first: in the application, or in the revision with op.execute before the "
        "referenced rows change. The history runs on DuckDB and PostgreSQL alike, so an "
        "action only PostgreSQL has can't be part of it."
    )
