"""PostgreSQL: what a migration finishes after its transaction commits, so nothing blocks.

In one transaction, a lock is held until COMMIT: once an ``ALTER TABLE``
has taken ACCESS EXCLUSIVE, every later scan in the same transaction (a
``VALIDATE CONSTRAINT``, an index build) keeps the application waiting, and
``CREATE INDEX CONCURRENTLY`` can't run in a transaction at all. Measured on a
million posts: adding a CHECK and a NOT NULL in one transaction stalled the
application's queries on posts for 260 ms (the scans after the first ALTER).

So the operations of a run that only *prove* old rows or *build* indexes
(``Step.online``) are deferred:

1. The run's transaction makes every catalog change: constraints are added
   ``NOT VALID`` (enforced on every new and updated row at once), columns
   change, rows are quarantined, and the deferred statements are written to
   the table ``egregora_pending``. It commits all of it, or none.
2. Then each deferred statement runs on its own: ``VALIDATE CONSTRAINT``
   (SHARE UPDATE EXCLUSIVE: reads and writes go on), ``CREATE [UNIQUE] INDEX
   CONCURRENTLY``, then ``ADD CONSTRAINT ... USING INDEX`` or ``SET NOT NULL``
   (ACCESS EXCLUSIVE for a catalog change only), each under the lock policy
   and removed from ``egregora_pending`` once done.

If step 2 fails (a row written between the preflight and the ALTER breaks a
rule, the process dies, a lock can't be had), the database is at the new
revision with the rules enforced on new rows; ``egregora_pending`` lists
what is left, and an index build that failed is left INVALID. The next
``alembic upgrade`` (head or not) finishes first: it drops an INVALID index
of the same name and builds it again, then goes on down the list.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import driver
from egregora.database.migration.errors import MigrationFailed, first_line
from egregora.database.migration.postgresql.locks import (
    ONE_CORE,
    LockPolicy,
    execute_with_retries,
    lock_wait_note,
    retrying,
    wait_for_advisory_lock,
)
from egregora.database.migration.report import plural
from egregora.database.migration.sqltext import Token, name_after

__all__ = ["PENDING_TABLE", "AfterCommit", "defer", "finish", "pending", "record", "take"]

log = logging.getLogger("alembic.egregora.afterwards")

PENDING_TABLE = "egregora_pending"
#: a statement finished after the commit that took this long gets a log line of its own
SLOW_SECONDS = 0.5
_BUILDS = (
    ("CREATE", "INDEX", "CONCURRENTLY", "IF", "NOT", "EXISTS"),
    ("CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", "IF", "NOT", "EXISTS"),
)


def built_index(sql: str) -> Token | None:
    """The index ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS name ON ...`` builds."""
    return name_after(sql, _BUILDS, then="ON")


@dataclass(frozen=True)
class AfterCommit:
    """A statement the run finishes after its commit."""

    revision: str
    table: str
    sql: str

    def names(self) -> set[str]:
        """The table, and the index a deferred build makes (``DROP INDEX`` names only it)."""
        built = built_index(self.sql)
        return {self.table.lower(), *([built.name.lower()] if built else [])}

    def in_transaction(self) -> str:
        """The same statement as it runs inside the migration's transaction."""
        return _CONCURRENTLY.sub(" ", self.sql, 1)


_CONCURRENTLY = re.compile(r"\s+CONCURRENTLY\s+", re.IGNORECASE)


def defer(
    queue: list[AfterCommit] | None, revision: str, table: str, statements: tuple[str, ...]
) -> bool:
    """Queue ``statements`` for after the commit; False when this run can't defer."""
    if queue is None:
        return False
    queue.extend(AfterCommit(revision, table, sql) for sql in statements)
    return True


def take(queue: list[AfterCommit] | None, tables: Iterable[str]) -> list[str]:
    """What the queue defers on ``tables``, taken off it, to run in the transaction now.

    A later operation of the same run on one of those tables must see them
    done: it reflects the table (a rebuild would drop a NOT VALID helper
    CHECK it does not know), or references its new key (a FOREIGN KEY needs
    the key's index). Only runs that change a table twice pay for it.
    """
    if not queue:
        return []
    wanted = {name.lower() for name in tables}  # a statement's names, as identifiers() folds them
    taken = [d for d in queue if wanted & d.names()]
    queue[:] = [d for d in queue if d not in taken]
    return [d.in_transaction() for d in taken]


def record(connection: sa.Connection, queue: list[AfterCommit]) -> None:
    """Write the queue into ``egregora_pending``, inside the run's transaction."""
    if not queue:
        return
    connection.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (position BIGSERIAL PRIMARY KEY, "
        "revision TEXT NOT NULL, table_name TEXT NOT NULL, sql TEXT NOT NULL)"
    )
    connection.execute(
        sa.text(f"INSERT INTO {PENDING_TABLE} (revision, table_name, sql) VALUES (:r, :t, :s)"),
        [{"r": d.revision, "t": d.table, "s": d.sql} for d in queue],
    )


def pending(connection: sa.Connection) -> list[tuple[int, AfterCommit]]:
    """What ``egregora_pending`` still lists, in order."""
    exists = connection.exec_driver_sql(f"SELECT to_regclass('{PENDING_TABLE}')").scalar()
    if exists is None:
        return []
    rows = connection.exec_driver_sql(
        f"SELECT position, revision, table_name, sql FROM {PENDING_TABLE} ORDER BY position"
    ).all()
    return [(int(p), AfterCommit(str(r), str(t), str(s))) for p, r, t, s in rows]


def finish(connection: sa.Connection, policy: LockPolicy, lock_key: int) -> int:
    """Run what ``egregora_pending`` lists, each on its own; how many statements ran.

    ``connection`` must not be in a transaction. One deploy at a time: the
    session-level advisory lock ``lock_key`` is the one migrations take.
    """
    raw = driver(connection)
    default = connection.default_isolation_level
    auto = connection.execution_options(isolation_level="AUTOCOMMIT")
    try:
        if not pending(auto):
            return 0
        wait_for_advisory_lock(auto, lock_key, transaction=False)
        try:
            items = pending(auto)  # another deploy may have finished them meanwhile
            auto.exec_driver_sql(f"SET lock_timeout = '{policy.lock_timeout}'")
            auto.exec_driver_sql(f"SET {ONE_CORE} = 0")  # see LockPolicy.apply
            began = time.perf_counter()
            for index, (position, item) in enumerate(items):
                started = time.perf_counter()
                try:
                    _run(auto, raw, item, position, policy)
                except Exception as exc:
                    raise MigrationFailed(_failure(item, exc, items[index:])) from None
                seconds = time.perf_counter() - started
                if seconds >= SLOW_SECONDS:  # the long ones, as they end; the rest in the total
                    log.info("after the commit: %s (%.1f s)", _head(item.sql), seconds)
            auto.exec_driver_sql(f"DROP TABLE {PENDING_TABLE}")  # all done: no trace left
            log.info(
                "after the commit: %s, each on its own, without blocking the application, %.2f s",
                plural(len(items), "statement"),
                time.perf_counter() - began,
            )
        finally:
            auto.exec_driver_sql("RESET lock_timeout")
            auto.exec_driver_sql(f"RESET {ONE_CORE}")
            auto.exec_driver_sql(f"SELECT pg_advisory_unlock({lock_key})")
    finally:
        auto.commit()  # SQLAlchemy autobegins even in AUTOCOMMIT: end that, nothing to commit
        connection.execution_options(isolation_level=default)
    return len(items)


def _run(
    auto: sa.Connection, raw: Any, item: AfterCommit, position: int, policy: LockPolicy
) -> None:
    table = auto.dialect.identifier_preparer.quote(item.table)
    done = f"DELETE FROM {PENDING_TABLE} WHERE position = {position}"
    built = built_index(item.sql)
    if built is None:  # a short transaction: the statement and its removal from the list
        raw.execute("BEGIN")
        try:
            execute_with_retries(raw, item.sql, table, policy, lock_wait_note)
            raw.execute(done)
            raw.execute("COMMIT")
        except Exception:
            raw.execute("ROLLBACK")
            raise
        return
    # CONCURRENTLY runs outside any transaction; a build that failed earlier
    # left an INVALID index of the same name, which IF NOT EXISTS would keep
    name = built.text

    def build() -> None:
        if _invalid(raw, name):  # a failed try (a lock timeout, say) leaves one too
            raw.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        raw.execute(item.sql)

    retrying(policy, build, raw, table, lock_wait_note)
    raw.execute(done)


def _invalid(raw: Any, name: str) -> bool:
    row = raw.execute(
        "SELECT NOT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass(%(n)s)",
        {"n": name},
    ).fetchone()
    return bool(row and row[0])


def _head(sql: str) -> str:
    return " ".join(sql.split())[:90]


def _failure(item: AfterCommit, exc: BaseException, left: list[tuple[int, AfterCommit]]) -> str:
    remaining = "; ".join(_head(d.sql) for _, d in left)
    return (
        f"The migration's changes are committed (revision {item.revision} and those before it "
        f"are applied, and new rows already obey their rules), but finishing them without "
        f"blocking the application stopped at: {_head(item.sql)}: {first_line(exc)}. Left to "
        f"do, as the table {PENDING_TABLE} lists it: {remaining}. Fix the cause (rows "
        "written since the preflight that break a rule; end a session holding a lock with "
        "pg_terminate_backend(pid), or wait for it), then run "
        "alembic upgrade head again: it finishes these first (an INVALID index left by a "
        "failed build is dropped and built again)."
    )
