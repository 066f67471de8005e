"""Alembic's PostgreSQL implementation: the same history, altered in place, under live traffic.

Every statement of a migration, Alembic's plain operations and the steps of
``create_copy_swap`` alike, goes through one :class:`~.executor.Sender`:
what it needs done first, its lock in the report, a savepoint and retries
under the run's lock policy. What only proves old rows or builds an index
follows the commit (aftercommit.py). A run holds the migrations' advisory
lock, and may rewrite the append-only tables (revision v4g's triggers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.ddl.postgresql import PostgresqlImpl
from alembic.operations import ops
from sqlalchemy.schema import CreateIndex

from egregora.database.migration.catalog import changed_check_names, driver
from egregora.database.migration.copyswap.model import Facts, Stage, Step
from egregora.database.migration.copyswap.postgresql import InPlacePlanner, concurrently
from egregora.database.migration.definitions import referred_table
from egregora.database.migration.handops import HandWrittenOps
from egregora.database.migration.opchange import rows_can_break
from egregora.database.migration.options import RunOptions
from egregora.database.migration.postgresql import aftercommit
from egregora.database.migration.postgresql.executor import Sender
from egregora.database.migration.postgresql.lockreport import note
from egregora.database.migration.postgresql.locks import ONE_CORE, wait_for_advisory_lock
from egregora.database.migration.readers import Readers, postgresql_readers
from egregora.database.migration.runstate import current_revision
from egregora.database.migration.sqltext import identifiers

__all__ = ["ALLOW_REWRITE_SETTING", "MIGRATION_LOCK_KEY", "EgregoraPostgresqlImpl"]

#: PostgreSQL setting that lets a migration rewrite append-only tables (v4g).
ALLOW_REWRITE_SETTING = "egregora.allow_rewrite"
#: PostgreSQL advisory lock key held by a running migration ("egregora" in ASCII).
MIGRATION_LOCK_KEY = int.from_bytes(b"egregora", "big") >> 1


class EgregoraPostgresqlImpl(HandWrittenOps, PostgresqlImpl):
    __dialect__ = "postgresql"
    planner = InPlacePlanner
    in_place = True

    @property
    def sender(self) -> Sender:
        return Sender(self.connection if not self.as_sql else None, self.run)

    # -- around a run ------------------------------------------------------------------------

    @classmethod
    def after_commit_queue(cls, connection: sa.Connection) -> list[aftercommit.AfterCommit] | None:
        """A connection lent in a transaction (the caller commits) finishes nothing after:
        its operations run whole, inside that transaction."""
        return None if connection.in_transaction() else []

    @classmethod
    def finish_after_commit(cls, connection: sa.Connection, options: RunOptions) -> None:
        aftercommit.finish(connection, options.lock_policy, MIGRATION_LOCK_KEY)

    def start(self, options: RunOptions) -> None:
        """One migration at a time, allowed to rewrite append-only tables; the lock policy.

        Several deploys may run ``alembic upgrade head`` against one server at
        once. A transaction-level advisory lock, taken before Alembic reads
        ``alembic_version``, makes the others wait for the first to commit;
        they then find the database at head and do nothing. Revision v4g's
        triggers refuse UPDATE and DELETE on the append-only tables unless
        the transaction-local ``egregora.allow_rewrite`` is on; migrations that
        quarantine rows or fill columns need it. ``set_config(..., true)`` and
        the lock both end with the transaction. Then the lock policy
        (lock_timeout and statement_timeout), after the advisory lock, which
        must wait for another deploy's whole run. Offline, a script sets the
        same timeouts (``SET LOCAL``).
        """
        policy = options.lock_policy
        self.run.lock_policy = policy
        if self.as_sql:
            if self.run.after_commit is None:  # a script's: written after its COMMIT
                self.run.after_commit = []
            for statement in policy.offline_sql():
                self._exec(statement)
            return
        wait_for_advisory_lock(self.conn, MIGRATION_LOCK_KEY, transaction=True)
        self.conn.exec_driver_sql(f"SELECT set_config('{ALLOW_REWRITE_SETTING}', 'on', true)")
        policy.apply(self.conn)

    def record_after_commit(self) -> None:
        """What follows the commit, into ``egregora_pending``, inside the run's transaction."""
        aftercommit.record(self.conn, self.run.after_commit or [])

    def write_after_commit(self) -> None:
        """Offline: what follows the commit, each statement on its own, after the script's."""
        queue, policy = self.run.after_commit, self.run.lock_policy
        if not queue or policy is None:
            return
        self._exec(
            "-- after the commit, each on its own (CONCURRENTLY can't run in a transaction): "
            "the scans that prove the old rows, and the index builds"
        )
        with self.run.writing_own():
            self._exec(f"SET lock_timeout = '{policy.lock_timeout}'")
            self._exec(f"SET {ONE_CORE} = 0")
            for item in queue:
                self._exec(item.sql)

    # -- for a rebuild ----------------------------------------------------------------------

    def read_facts(
        self, stages: Sequence[Stage], dependents: Sequence[sa.Table], inline_keys: bool
    ) -> Facts:
        # CHECKs are matched by name; ask the server which of them keep their
        # name but not their expression
        changed = changed_check_names(self.conn, stages[-1].target)
        return Facts(tuple(dependents), changed_checks=frozenset(changed))

    def readers_of(self, table: str, columns: Iterable[str]) -> Readers:
        return postgresql_readers(self.conn, table, columns)

    def before_operation(self, target: sa.Table, revision: str) -> None:
        """What this run put off on the tables the operation touches runs now.

        The table, the tables that reference it (rebuilt by nothing here, but
        reflected), and those its FOREIGN KEYs reference (their keys must exist).
        """
        if not self.run.after_commit:
            return
        touched = {target.name, *self.catalog(self.conn).referencing(target.name)}
        touched |= {referred_table(fk) for fk in target.foreign_key_constraints}
        self.take_back(touched, revision)

    def take_back(self, names: Iterable[str], revision: str) -> None:
        run_now = self._exec if self.as_sql else driver(self.conn).execute
        self.sender.take_back(names, revision, run_now)

    def execute_step(self, step: Step, revision: str) -> None:
        """A step's non-blocking form follows the commit when this run can defer it."""
        report = self.run.report
        if step.online and aftercommit.defer(
            self.run.after_commit, revision, step.table, step.online
        ):
            for sql in step.online:
                note(report, revision, sql, after_commit=True)
            return
        raw = driver(self.conn)
        self.sender.send(lambda: raw.execute(step.sql), step.sql, revision, self.quote(step.table))

    # -- Alembic's plain operations ----------------------------------------------------------

    def needs_rebuild(self, table: str, op: Any) -> bool:
        """An operation rows can break: create_copy_swap's preflight, then ALTER in place.

        Offline (--sql) a plain operation is written as it is.
        """
        return not self.as_sql and rows_can_break(op)

    def _exec(self, construct: Any, *args: Any, **kw: Any) -> Any:
        """Alembic's plain operations, sent as every statement is (executor.py)."""
        sender, base = self.sender, super()._exec
        if not self.run.after_commit and (self.run.report is None or self.as_sql):
            return sender.send(lambda: base(construct, *args, **kw))  # nothing to note or take
        revision, sql = current_revision(), self._sql(construct)
        sender.take_back(identifiers(sql), revision, lambda s: base(sa.text(s)))
        return sender.send(lambda: base(construct, *args, **kw), sql, revision)

    def create_index(self, index: Any, **kw: Any) -> None:
        """A new index is built CONCURRENTLY after the run's commit (aftercommit.py).

        A plain CREATE INDEX blocks the table's writes for the whole build.
        Where this run can't defer (a connection lent in a transaction), it
        is built in the transaction, as Alembic would.
        """
        if index.unique and self.needs_rebuild(
            index.table.name, ops.CreateIndexOp.from_index(index)
        ):
            super().create_index(index, **kw)  # its rows checked first (handops.py)
            return
        queue = self.run.after_commit
        if queue is None or kw:
            super().create_index(index, **kw)
            return
        revision = current_revision()
        sql = concurrently(str(CreateIndex(index).compile(dialect=self.dialect)))
        aftercommit.defer(queue, revision, str(index.table.name), (sql,))
        note(self.run.report if not self.as_sql else None, revision, sql, after_commit=True)

    def _sql(self, construct: Any) -> str:
        if isinstance(construct, str):
            return construct
        return str(construct.compile(dialect=self.dialect))
