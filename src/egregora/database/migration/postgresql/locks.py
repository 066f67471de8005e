"""PostgreSQL under live traffic: a migration never queues the application behind it.

``ALTER TABLE`` needs ACCESS EXCLUSIVE for a moment. If any session holds a
lock on the table (a long report, a session idle in transaction), the ALTER
waits, and every later query on the table queues behind the waiting ALTER:
the site stalls for as long as the blocker lives. So every migration sets a
transaction-local ``lock_timeout`` (``-x lock_timeout=``, default 5s): the
ALTER gives up instead of stalling everyone, and is retried with backoff
(``-x lock_retries=``, default 3) inside a savepoint, so the run stays one
transaction. One that still can't get its lock fails naming the sessions
that hold locks on the table, and the whole run is rolled back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from egregora.database.migration.errors import InvalidOperation, MigrationFailed

__all__ = [
    "LOCK_NOT_AVAILABLE",
    "LockPolicy",
    "ONE_CORE",
    "Refusal",
    "execute_with_retries",
    "is_lock_timeout",
    "lock_holders",
    "lock_refusal",
    "lock_wait_note",
    "retrying",
    "wait_for_advisory_lock",
]

T = TypeVar("T")
#: PostgreSQL's SQLSTATE for "could not obtain lock" (lock_timeout, NOWAIT)
LOCK_NOT_AVAILABLE = "55P03"
_DURATION = re.compile(r"\d+\s*(ms|s|min)?", re.IGNORECASE)
_SAVEPOINT = "egregora_lock_retry"
#: the setting that keeps a migration's scans on one core (LockPolicy.apply)
ONE_CORE = "max_parallel_workers_per_gather"


@dataclass(frozen=True)
class LockPolicy:
    """How long one statement may wait for a lock, and how often it tries again."""

    lock_timeout: str = "5s"
    retries: int = 3
    backoff_seconds: float = 0.5
    statement_timeout: str | None = None

    @classmethod
    def from_x_args(cls, x_args: Mapping[str, str]) -> LockPolicy:
        """``-x lock_timeout=5s -x lock_retries=3 -x statement_timeout=10min``, checked."""
        lock_timeout = _duration(x_args, "lock_timeout", cls.lock_timeout)
        statement_timeout = (
            _duration(x_args, "statement_timeout", "") if "statement_timeout" in x_args else None
        )
        retries = x_args.get("lock_retries", str(cls.retries))
        if not retries.isdigit():
            raise InvalidOperation(
                f"-x lock_retries={retries} is not a whole number; for example "
                "-x lock_retries=3 (the default): how many times a statement that timed out "
                "waiting for a lock is tried again."
            )
        return cls(lock_timeout, int(retries), cls.backoff_seconds, statement_timeout)

    def apply(self, connection: sa.Connection) -> None:
        """Set the timeouts for this transaction only.

        Also ``max_parallel_workers_per_gather = 0``: the migration's scans
        (preflight, VALIDATE) then use one core. With PostgreSQL's default of
        2 workers they took every core of the 2-core test server, and the
        application's p99 during create_copy_swap on a million posts rose to
        49 ms, against 10 ms on one core, the migration no slower (0.91 s,
        0.88 s: benchmarks/postgresql.py).
        """
        connection.exec_driver_sql(
            "SELECT set_config('lock_timeout', %(v)s, true)", {"v": self.lock_timeout}
        )
        connection.exec_driver_sql(f"SELECT set_config('{ONE_CORE}', '0', true)")
        if self.statement_timeout is not None:
            connection.exec_driver_sql(
                "SELECT set_config('statement_timeout', %(v)s, true)",
                {"v": self.statement_timeout},
            )

    def offline_sql(self) -> list[str]:
        """The same settings, for a ``--sql`` script (run inside its transaction)."""
        statements = [
            f"SET LOCAL lock_timeout = '{self.lock_timeout}'",
            f"SET LOCAL {ONE_CORE} = 0",
        ]
        if self.statement_timeout is not None:
            statements.append(f"SET LOCAL statement_timeout = '{self.statement_timeout}'")
        return statements


def _duration(x_args: Mapping[str, str], key: str, default: str) -> str:
    value = x_args.get(key, default).strip()
    if not _DURATION.fullmatch(value):
        raise InvalidOperation(
            f"-x {key}={value} is not a duration PostgreSQL takes; give one such as "
            f"-x {key}=5s, -x {key}=500ms or -x {key}=2min."
        )
    return value.replace(" ", "")


def is_lock_timeout(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None) or exc
    return getattr(original, "sqlstate", None) == LOCK_NOT_AVAILABLE


#: what a statement that never got its lock says: given (driver connection, table, policy)
Refusal = Callable[[Any, "str | None", "LockPolicy"], str]


def retrying(
    policy: LockPolicy,
    attempt: Callable[[], T],
    raw: Any,
    table: str | None,
    refusal: Refusal | None = None,
) -> T:
    """``attempt()`` until it gets its locks: again, with backoff, after a lock timeout.

    ``attempt`` runs its statement in a savepoint and rolls back to it when
    it fails, so the migration's transaction stays usable. After
    ``policy.retries`` more tries it fails, naming who holds locks on
    ``table`` (``raw``: the driver connection to ask), and the whole
    migration rolls back.
    """
    for tries in range(policy.retries + 1):
        try:
            return attempt()
        except Exception as exc:
            if not is_lock_timeout(exc):
                raise
            if tries == policy.retries:
                raise MigrationFailed((refusal or lock_refusal)(raw, table, policy)) from None
            time.sleep(policy.backoff_seconds * 2**tries)
    raise AssertionError("unreachable: the last try returns or raises")


def execute_with_retries(
    raw: Any, sql: str, table: str | None, policy: LockPolicy, refusal: Refusal | None = None
) -> None:
    """Run ``sql`` on the driver connection under ``policy`` (see :func:`retrying`)."""

    def attempt() -> None:
        raw.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            raw.execute(sql)
        except Exception:
            raw.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            raise
        raw.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    retrying(policy, attempt, raw, table, refusal)


_HOLDERS = """
SELECT a.pid, a.state,
       extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::int,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60)
FROM pg_stat_activity AS a
WHERE a.pid <> pg_backend_pid()
  AND a.pid IN (SELECT l.pid FROM pg_locks AS l WHERE l.granted AND l.relation IS NOT NULL
                AND l.relation >= 16384  -- user objects, not the catalog
                AND (%(table)s::text IS NULL OR l.relation = to_regclass(%(table)s)))
ORDER BY a.pid
"""


def lock_holders(raw: Any, table: str | None) -> list[str]:
    """``pid 123 (idle in transaction for 18 s: SELECT ...)`` for each session holding a lock.

    On ``table``, or on any user table when the statement's table is unknown.
    """
    rows = raw.execute(_HOLDERS, {"table": table}).fetchall()
    return [f"pid {pid} ({state} for {age} s: {query!r})" for pid, state, age, query in rows]


def lock_refusal(raw: Any, table: str | None, policy: LockPolicy) -> str:
    holders = lock_holders(raw, table)
    named = "; ".join(holders) if holders else "no session holds one any more"
    where = table or "a table"
    return (
        f"Could not get a lock on {where} within lock_timeout = {policy.lock_timeout}, "
        f"after {policy.retries + 1} tries: the migration gave up rather than make the "
        f"application's queries wait behind it, and was rolled back, so nothing was "
        f"changed. Holding locks on {where}: {named}. End or wait for those sessions "
        "(pg_terminate_backend(pid) ends one), then run again; -x lock_timeout=... and "
        "-x lock_retries=... wait longer."
    )


def wait_for_advisory_lock(connection: sa.Connection, key: int, *, transaction: bool) -> None:
    """Take the migrations' advisory lock, polling: a waiter holds no snapshot while it waits.

    A deploy that blocked in ``pg_advisory_lock`` would hold its statement's
    snapshot all the while, and ``CREATE INDEX CONCURRENTLY`` in the deploy
    finishing ahead of it waits for every older snapshot: measured, three
    concurrent deploys deadlocked. Between tries nothing runs, so nothing is
    held. ``transaction``: released at COMMIT, else held until unlocked.
    """
    function = "pg_try_advisory_xact_lock" if transaction else "pg_try_advisory_lock"
    while not connection.exec_driver_sql(f"SELECT {function}({key})").scalar():
        time.sleep(0.2)


def lock_wait_note(raw: Any, table: str | None, policy: LockPolicy) -> str:
    """A lock refusal's facts, without saying what became of the run (the caller says)."""
    holders = lock_holders(raw, table)
    named = "; ".join(holders) if holders else "no session holds one any more"
    return (
        f"could not get a lock on {table or 'a table'} within lock_timeout = "
        f"{policy.lock_timeout}, after {policy.retries + 1} tries (holding locks on it: {named})"
    )
