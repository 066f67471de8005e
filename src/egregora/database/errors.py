"""Refusals a user can meet, each a one-paragraph message.

They subclass Alembic's ``CommandError``: the ``alembic`` command line prints
such an error as ``FAILED: <message>`` and exits non-zero, without a
traceback.
"""

from __future__ import annotations

from alembic.util import CommandError


class SchemaError(CommandError):
    """Base of every refusal of this package. Nothing was changed."""


class DatabaseUnavailable(SchemaError):
    """The database could not be opened (bad URL, locked, not a DuckDB file)."""


class AdoptionRefused(SchemaError):
    """A database without ``alembic_version`` does not match the V3 baseline."""


class InvalidOperation(SchemaError):
    """An operation's arguments can't work (unknown table, unfillable column...)."""


class ConstraintViolations(SchemaError):
    """Existing rows violate constraints a migration would add."""


class MigrationFailed(SchemaError):
    """The database rejected a statement; the transaction was rolled back."""


def first_line(exc: BaseException) -> str:
    """The informative part of a DB-API error, without SQLAlchemy's trailer."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(original).__name__
