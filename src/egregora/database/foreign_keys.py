"""Which FOREIGN KEYs the database itself enforces: the one place that decides.

The Egregora application replaces a cached profile or post by DELETE then
INSERT (and updates list columns such as ``profiles.interests``). A FOREIGN
KEY declared ``deferrable=True, initially="DEFERRED"`` lets it do so inside
one transaction: the reference is checked when the transaction commits.

- **PostgreSQL** defers the check to COMMIT (measured on 15: a DELETE then
  INSERT of a referenced profile in one transaction passes; a DELETE alone
  is refused at COMMIT; with a NOT DEFERRABLE key both are refused at once).
- **DuckDB** can't defer a FOREIGN KEY. Its parser refuses ``DEFERRABLE``,
  and a key it enforces is checked at every statement: on a referenced row it
  refuses DELETE (even followed by INSERT in the same transaction), UPDATE of
  a key or of any LIST column, ``INSERT OR REPLACE`` and ``ON CONFLICT DO
  UPDATE`` that set a LIST column; only updates of scalar non-key columns
  pass (measured on DuckDB 1.4.3 and 2.0.1, docs/app-on-head.md). So on
  DuckDB a deferrable FOREIGN KEY is left out of the table's DDL, and
  :mod:`egregora.database.integrity` checks it instead: the migrations (a
  rebuild judges its rows), ``alembic check``, and the application when it
  wants (``foreign_key_violations``).

Importing this module registers the DDL rule for the ``duckdb`` dialect, so
``metadata.create_all``, Alembic and ``create_copy_swap`` all leave such a
key out on DuckDB; :mod:`egregora.database.schemas` imports it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

#: The dialect that can't defer a FOREIGN KEY check (see the module docstring).
CANT_DEFER = "duckdb"


def deferrable(fk: sa.ForeignKeyConstraint) -> bool:
    """Whether the key may be checked after its statement (DEFERRABLE, INITIALLY DEFERRED)."""
    return bool(fk.deferrable) or str(fk.initially or "").upper() == "DEFERRED"


Database = str | sa.engine.Dialect


def enforced_by(fk: sa.ForeignKeyConstraint, database: Database) -> bool:
    """Whether ``database`` (a dialect, or its name) enforces ``fk`` itself (else: checked)."""
    name = database if isinstance(database, str) else database.name
    return not (name == CANT_DEFER and deferrable(fk))


def enforced_fks(table: sa.Table, database: Database) -> list[sa.ForeignKeyConstraint]:
    """The table's FOREIGN KEYs that ``database`` (a dialect, or its name) enforces itself."""
    return [fk for fk in table.foreign_key_constraints if enforced_by(fk, database)]


@compiles(sa.ForeignKeyConstraint, CANT_DEFER)
def _foreign_key_on_duckdb(constraint: sa.ForeignKeyConstraint, compiler: Any, **kw: Any) -> Any:
    """DuckDB's DDL for a FOREIGN KEY: none for a deferrable one (checked by integrity.py)."""
    if not enforced_by(constraint, CANT_DEFER):
        return None  # CREATE TABLE leaves a constraint that compiles to None out
    return compiler.visit_foreign_key_constraint(constraint, **kw)
