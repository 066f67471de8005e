"""What each statement a migration sends to PostgreSQL locks, and whether it scans.

The questions squawk and strong_migrations ask of a migration, answered for
the statements this project writes (and Alembic's plain ones): which table
lock a statement takes, and whether, holding it, it only changes the catalog,
scans the table, builds an index or rewrites every row. A scan or rewrite
under a lock that the application's reads or writes wait on is what stalls a
site; the dry-run report lists them (:class:`egregora.database.migration.report.LockReport`).

From PostgreSQL's documentation (ALTER TABLE, CREATE INDEX, "Explicit
Locking"), for PostgreSQL 12+.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from egregora.database.migration.report import LockReport, RunReport
from egregora.database.migration.sqltext import folded, name_after

__all__ = [
    "ACCESS_EXCLUSIVE",
    "LockEffect",
    "SHARE_UPDATE_EXCLUSIVE",
    "lock_of",
    "note",
    "target_table",
]

ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"


@dataclass(frozen=True)
class LockEffect:
    """The lock a statement takes and what it does while holding it."""

    lock: str
    does: str
    #: the application's reads or writes on the table wait for the whole of ``does``
    blocks: bool


#: (pattern over the statement, upper-cased, whitespace folded) -> effect; first match wins
_RULES: tuple[tuple[str, LockEffect], ...] = (
    (
        r"^CREATE (UNIQUE )?INDEX CONCURRENTLY",
        LockEffect(SHARE_UPDATE_EXCLUSIVE, "builds an index while reads and writes go on", False),
    ),
    (
        r"^CREATE (UNIQUE )?INDEX",
        LockEffect("SHARE", "builds an index (writes wait, reads go on)", True),
    ),
    (r"^DROP INDEX CONCURRENTLY", LockEffect(SHARE_UPDATE_EXCLUSIVE, "catalog only", False)),
    (
        r"^ALTER TABLE .* VALIDATE CONSTRAINT",
        LockEffect(SHARE_UPDATE_EXCLUSIVE, "scans the table while reads and writes go on", False),
    ),
    (
        r"^ALTER TABLE .* ADD CONSTRAINT .* FOREIGN KEY .* NOT VALID$",
        LockEffect("SHARE ROW EXCLUSIVE (on both tables)", "catalog only", False),
    ),
    (
        r"^ALTER TABLE .* ADD CONSTRAINT .* NOT VALID$",
        LockEffect(ACCESS_EXCLUSIVE, "catalog only", False),
    ),
    (
        r"^ALTER TABLE .* ADD CONSTRAINT .* USING INDEX",
        LockEffect(ACCESS_EXCLUSIVE, "catalog only (the index is built)", False),
    ),
    (
        r"^ALTER TABLE .* ADD (CONSTRAINT .* )?(PRIMARY KEY|UNIQUE)",
        LockEffect(ACCESS_EXCLUSIVE, "builds an index", True),
    ),
    (
        r"^ALTER TABLE .* ADD (CONSTRAINT .* )?FOREIGN KEY",
        LockEffect("SHARE ROW EXCLUSIVE (on both tables)", "scans the table to validate", True),
    ),
    (
        r"^ALTER TABLE .* ADD (CONSTRAINT .* )?CHECK",
        LockEffect(ACCESS_EXCLUSIVE, "scans the table to validate", True),
    ),
    (
        r"^ALTER TABLE .* ALTER COLUMN .* (SET DATA )?TYPE ",
        LockEffect(
            ACCESS_EXCLUSIVE,
            "rewrites the table (unless the new type is binary-coercible, as VARCHAR(n) to TEXT)",
            True,
        ),
    ),
    (
        r"^ALTER TABLE .* ALTER COLUMN .* SET NOT NULL",
        LockEffect(
            ACCESS_EXCLUSIVE,
            "catalog only after a validated CHECK (col IS NOT NULL), which this project "
            "adds first (else it scans the table)",
            False,
        ),
    ),
    (
        r"^ALTER TABLE .* ADD (COLUMN )?.* DEFAULT .*(RANDOM|UUID|CLOCK_TIMESTAMP|NEXTVAL)\(",
        LockEffect(ACCESS_EXCLUSIVE, "rewrites the table (a volatile DEFAULT)", True),
    ),
    (r"^ALTER TABLE", LockEffect(ACCESS_EXCLUSIVE, "catalog only", False)),
    (r"^(DROP|TRUNCATE) TABLE", LockEffect(ACCESS_EXCLUSIVE, "catalog only", False)),
    (r"^DROP INDEX", LockEffect(ACCESS_EXCLUSIVE, "catalog only", False)),
    (r"^COMMENT ON", LockEffect(SHARE_UPDATE_EXCLUSIVE, "catalog only", False)),
    (
        r"^(UPDATE|DELETE|INSERT|MERGE)",
        LockEffect("ROW EXCLUSIVE", "writes rows (row locks on the rows it changes)", False),
    ),
    (r"^CREATE TABLE", LockEffect("", "a new table: nothing the application waits on", False)),
)
_COMPILED = tuple((re.compile(pattern), effect) for pattern, effect in _RULES)


def lock_of(sql: str) -> LockEffect | None:
    """What ``sql`` locks on PostgreSQL, or None for a statement that takes no table lock
    the application could wait on (a SELECT, a DO block of checks, SET)."""
    folded = " ".join(sql.split()).upper()
    for pattern, effect in _COMPILED:
        if pattern.search(folded):
            return effect
    return None


def note(report: RunReport | None, revision: str, sql: str, *, after_commit: bool = False) -> None:
    """Add ``sql``'s lock to the run's report (dry runs and ``-x report=``), if it takes one
    on a table the application uses.

    Locks last until COMMIT: a statement that writes rows of a table this
    transaction has already locked ACCESS EXCLUSIVE (an ``UPDATE`` filling a
    column just added) keeps the application waiting for all of its rows,
    whatever lock it asks for itself.
    """
    table = target_table(sql)
    if report is None or _bookkeeping(table):
        return
    effect = lock_of(sql)
    if effect is None:
        return
    if not after_commit and effect.lock == "ROW EXCLUSIVE" and _held(report, table):
        effect = LockEffect(
            ACCESS_EXCLUSIVE,
            "writes rows while the ACCESS EXCLUSIVE an earlier statement of this "
            "transaction took is held",
            True,
        )
    report.locks.append(
        LockReport(revision, sql, effect.lock, effect.does, effect.blocks, after_commit)
    )


def _held(report: RunReport, table: str | None) -> bool:
    """Whether an earlier statement of the run's transaction took ACCESS EXCLUSIVE on ``table``."""
    return table is not None and any(
        not k.after_commit and k.lock == ACCESS_EXCLUSIVE and target_table(k.statement) == table
        for k in report.locks
    )


#: how a statement that writes or alters a table begins, before the table's name
_WRITES = (
    ("INSERT", "INTO"),
    ("DELETE", "FROM"),
    ("UPDATE",),
    ("ALTER", "TABLE"),
    ("DROP", "TABLE"),
    ("CREATE", "TABLE", "IF", "NOT", "EXISTS"),
    ("CREATE", "TABLE"),
    ("CREATE", "TEMPORARY", "TABLE"),
)


def target_table(sql: str) -> str | None:
    """The table a statement writes or alters, as PostgreSQL folds its name."""
    found = name_after(sql, _WRITES)
    return None if found is None else folded(found)


def _bookkeeping(table: str | None) -> bool:
    """Whether ``table`` is the run's own (``__ccs_*``, ``*_quarantine``)."""
    if table is None:
        return False
    name = table.lower()
    return name.startswith("__ccs_") or name.endswith("_quarantine") or name.endswith("__ccs_new")
