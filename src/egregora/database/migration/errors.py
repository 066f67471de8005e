"""Refusals a user can meet, each a one-paragraph message.

They subclass Alembic's ``CommandError``: the ``alembic`` command line prints
such an error as ``FAILED: <message>`` and exits non-zero, without a
traceback.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from alembic.util import CommandError

__all__ = [
    "AdoptionRefused",
    "ConstraintViolations",
    "DatabaseUnavailable",
    "INTERRUPTED",
    "InvalidOperation",
    "MigrationFailed",
    "SchemaError",
    "failing_as",
    "first_line",
    "in_our_words",
    "is_interrupt",
    "is_out_of_memory",
    "out_of_memory",
]


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


class DryRunRefused(ConstraintViolations):
    """A dry run in fail mode found rows the real run would refuse (exit non-zero)."""


class ReferenceViolations(SchemaError):
    """Rows break a FOREIGN KEY that the database does not enforce itself (integrity.py)."""


class MigrationFailed(SchemaError):
    """The database rejected a statement; the transaction was rolled back."""


INTERRUPTED = (
    "Interrupted: the migration was rolled back and the database is as it was before. "
    "Run the command again to migrate."
)


DRY_RUN_REFUSED = (
    "The dry run found rows that violate the new constraints (listed above, under "
    "'the real run would be refused'), so `alembic upgrade` would refuse to run. The dry "
    "run was rolled back and nothing was changed. Fix those rows, or rehearse with "
    "-x on_violation=quarantine to see them moved aside."
)


def first_line(exc: BaseException) -> str:
    """The informative part of a DB-API error, without SQLAlchemy's trailer or final period."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return (text.splitlines()[0] if text else type(original).__name__).rstrip(".")


#: DuckDB's error classes as its messages start ("Dependency Error: ...",
#: "Not implemented Error: ..."): this schema says what went wrong in its own words
_ENGINE_CLASS = re.compile(r"^(?:[A-Za-z]+ )*?(?:[A-Za-z]+ )?Error: ")


def in_our_words(detail: str) -> str:
    """An engine's one line without its error class name: what it said, not what it calls it.

    Running out of memory is said as such (``Out of Memory: ...``): it tells
    what to do (more memory, or room for temporary files).
    """
    found = _ENGINE_CLASS.match(detail)
    if found is None:
        return detail
    plain = detail[found.end() :]
    if found.group(0).lower().startswith("out of memory"):
        return f"Out of Memory: {plain}"
    return f"the database said: {plain}"


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaces: Python's KeyboardInterrupt, or DuckDB's
    "Query interrupted" (a plain RuntimeError from DuckDB 2.0's Python client,
    an INTERRUPT error from others), possibly wrapped by SQLAlchemy."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return "interrupted" in first_line(exc).lower()


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's "could not allocate block" / "Out of Memory Error", however wrapped.

    DuckDB 1.4 says a failed COMMIT past memory_limit as "Failed to commit:
    failed to pin block of size ..." (measured on 1.4.3), with no class name.
    """
    detail = first_line(exc)
    return any(s in detail for s in ("could not allocate", "Out of Memory", "failed to pin block"))


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


@contextlib.contextmanager
def failing_as(what: str, memory_limit: str | None = None) -> Iterator[None]:
    """Any failure inside becomes one paragraph: ``{what}: {the cause}``; the run rolls back.

    Our own refusals pass as they are; Ctrl-C says it was interrupted; with
    ``memory_limit`` (DuckDB's, asked at the start of the run: a connection
    that ran out of memory can't be asked any more) running out of memory
    says what to do about it.
    """
    try:
        yield
    except SchemaError:
        raise
    except Exception as exc:
        if is_interrupt(exc):
            raise MigrationFailed(INTERRUPTED) from None
        if memory_limit is not None and is_out_of_memory(exc):
            raise MigrationFailed(out_of_memory(first_line(exc), memory_limit)) from None
        raise MigrationFailed(
            f"{what}: {in_our_words(first_line(exc))}. The migration was rolled back; the "
            "database is unchanged."
        ) from None
