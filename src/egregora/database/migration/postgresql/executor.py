"""PostgreSQL: how each statement of a migration is sent, plain operation or rebuild step.

One way for both, so that they keep the same promises under live traffic:

1. what the run put off until after its commit on a table the statement
   names runs first, inside the transaction (aftercommit.take): a later
   change of the same table must see it done;
2. the statement's lock goes into the run's report (lockreport.note);
3. it runs in a savepoint under the run's lock policy, and is tried again
   after a lock timeout (locks.retrying), so that it never makes the
   application's queries queue behind a long wait.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TypeVar

import sqlalchemy as sa

from egregora.database.migration.catalog import driver
from egregora.database.migration.postgresql.aftercommit import take
from egregora.database.migration.postgresql.lockreport import note
from egregora.database.migration.postgresql.locks import retrying
from egregora.database.migration.runstate import RunState

__all__ = ["Sender"]

T = TypeVar("T")


class Sender:
    """Sends the statements of one migration context (``connection`` None: offline)."""

    def __init__(self, connection: sa.Connection | None, run: RunState) -> None:
        self.connection = connection
        self.run = run

    def take_back(
        self, names: Iterable[str], revision: str, run_now: Callable[[str], object]
    ) -> None:
        """What the run put off until after its commit on ``names``: now, in the transaction.

        ``run_now`` runs one such statement (in the transaction, or into a
        script offline). Not while an operation writes its own statements.
        """
        if self.run.own_statements:
            return
        for sql in take(self.run.after_commit, names):
            self.send(functools.partial(run_now, sql), sql, revision)

    def send(
        self,
        attempt: Callable[[], T],
        sql: str | None = None,
        revision: str = "unknown",
        table: str | None = None,
    ) -> T:
        """Note ``sql``'s lock (when given), then run it (``attempt``) under the lock policy.

        ``table``: the quoted table the statement changes, whose lock holders
        a refusal names (any user table's, when None).
        """
        if sql is not None and self.connection is not None:
            note(self.run.report, revision, sql)
        connection, policy = self.connection, self.run.lock_policy
        if connection is None or policy is None:
            return attempt()

        def in_savepoint() -> T:
            with connection.begin_nested():  # rolled back to on any error
                return attempt()

        return retrying(policy, in_savepoint, driver(connection), table)
