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


class ReferenceViolations(SchemaError):
    """Rows break a FOREIGN KEY that the database does not enforce itself (integrity.py)."""


class MigrationFailed(SchemaError):
    """The database rejected a statement; the transaction was rolled back."""


INTERRUPTED = (
    "Interrupted: the migration was rolled back and the database is as it was before. "
    "Run the command again to migrate."
)


def first_line(exc: BaseException) -> str:
    """The informative part of a DB-API error, without SQLAlchemy's trailer or final period."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return (text.splitlines()[0] if text else type(original).__name__).rstrip(".")


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaces: Python's KeyboardInterrupt, or DuckDB's
    "Query interrupted" (a plain RuntimeError from DuckDB 2.0's Python client,
    an INTERRUPT error from others), possibly wrapped by SQLAlchemy."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return "interrupted" in first_line(exc).lower()


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's "could not allocate block" / "Out of Memory Error", however wrapped."""
    detail = first_line(exc)
    return "could not allocate" in detail or "Out of Memory" in detail


def out_of_memory(detail: str, limit: str) -> str:
    """A rebuild that outgrew DuckDB's memory or temporary files: what was measured, what to do."""
    return (
        f"DuckDB ran out of room ({detail}) with memory_limit = {limit}, and the migration "
        "was rolled back, so every table and row is as before. A rebuild "
        "(create_copy_swap) holds the new copy of the table in memory, or in DuckDB's "
        "temporary files, until COMMIT: measured on DuckDB 2.0, 3,000,000 posts-shaped rows "
        "need a memory_limit between 300 MB and 600 MB, and the process then peaks at about "
        "1.7x the limit. Run again with more memory (for example -x memory_limit=4GB, on a "
        "machine that has it) or more room for temporary files (DuckDB's temp_directory and "
        "max_temp_directory_size)."
    )


#: where the migration connection remembers DuckDB's memory_limit (for the message
#: above: a connection that ran out of memory can't be asked any more)
MEMORY_LIMIT_INFO = "egregora_memory_limit"
