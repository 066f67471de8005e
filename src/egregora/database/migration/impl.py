"""Alembic's DuckDB implementation, with the quirks this project met handled in one place.

duckdb-sqlalchemy registers ``DuckDBImpl`` for the ``duckdb`` dialect. This
subclass is defined after it, so Alembic uses it instead (Alembic's
implementation registry keeps the last class defined for a dialect).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl
from alembic.ddl.postgresql import PostgresqlImpl
from duckdb_sqlalchemy.alembic_impl import DuckDBImpl
from sqlalchemy.schema import CreateIndex

from egregora.database.migration.afterwards import AFTER_COMMIT, concurrently, defer, take
from egregora.database.migration.catalog import driver, scratch_type_name
from egregora.database.migration.destroyed import record_dropped
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.locks import LOCK_POLICY_INFO, retrying
from egregora.database.migration.pglocks import note
from egregora.database.migration.readers import refuse_dropping_read_columns
from egregora.database.migration.runstate import REPORT_OPTION, current_revision
from egregora.database.migration.sqltext import identifiers


class CountsWhatItDestroys(DefaultImpl):
    """Plain ``drop_column`` and ``drop_table`` count what they drop, for the run's report.

    Only online, and only when the run keeps a report (dry runs, ``-x report=``).
    A ``drop_column`` that views or macros read is refused first (readers.py).
    """

    def drop_column(
        self, table_name: str, column: Any, schema: str | None = None, **kw: Any
    ) -> None:
        if not self.as_sql and isinstance(self.connection, sa.Connection):
            refuse_dropping_read_columns(
                self.connection, table_name, [column.name], current_revision()
            )
        self._record(table_name, [column.name])
        super().drop_column(table_name, column, schema=schema, **kw)

    def drop_table(self, table: Any, **kw: Any) -> None:
        self._record(table.name, None)
        super().drop_table(table, **kw)

    def _record(self, table: str, columns: list[str] | None) -> None:
        report = self.context_opts.get(REPORT_OPTION)
        if report is None or self.as_sql or self.connection is None:
            return
        record_dropped(self.connection, report, current_revision(), table, columns)


class EgregoraPostgresqlImpl(CountsWhatItDestroys, PostgresqlImpl):
    __dialect__ = "postgresql"

    def _exec(self, construct: Any, *args: Any, **kw: Any) -> Any:
        """Alembic's plain operations under the run's lock policy (locks.py).

        Each statement runs in a savepoint; one that gives up waiting for its
        lock (lock_timeout) is rolled back to it and tried again, so that an
        ALTER never queues the application's queries behind a long wait. What
        the run deferred on a table the statement names runs first
        (afterwards.take).
        """
        queue = self._queue()
        report = None if self.as_sql else self.context_opts.get(REPORT_OPTION)
        if queue or report is not None:  # both read the statement's SQL: compiled once
            sql = self._sql(construct)
            for statement in take(queue, identifiers(sql)):
                note(report, current_revision(), statement)
                self._run(sa.text(statement))
            note(report, current_revision(), sql)
        return self._run(construct, *args, **kw)

    def _run(self, construct: Any, *args: Any, **kw: Any) -> Any:
        if self.as_sql or not isinstance(self.connection, sa.Connection):
            return super()._exec(construct, *args, **kw)  # offline: a script, no locks
        policy = self.connection.info.get(LOCK_POLICY_INFO)
        if policy is None:
            return super()._exec(construct, *args, **kw)
        connection = self.connection

        def attempt() -> Any:
            with connection.begin_nested():  # rolled back to on any error
                return super(EgregoraPostgresqlImpl, self)._exec(construct, *args, **kw)

        return retrying(policy, attempt, driver(connection), None)

    def create_index(self, index: Any, **kw: Any) -> None:
        """A new index is built CONCURRENTLY after the run's commit (afterwards.py).

        A plain CREATE INDEX blocks the table's writes for the whole build.
        Where this run can't defer (a connection lent in a transaction), it
        is built in the transaction, as Alembic would.
        """
        queue = self._queue()
        if queue is None or kw:
            super().create_index(index, **kw)
            return
        sql = concurrently(str(CreateIndex(index).compile(dialect=self.dialect)))
        defer(queue, current_revision(), str(index.table.name), (sql,))
        note(self.context_opts.get(REPORT_OPTION), current_revision(), sql, after_commit=True)

    def _queue(self) -> list[Any] | None:
        if self.as_sql or not isinstance(self.connection, sa.Connection):
            return self.context_opts.get(AFTER_COMMIT)
        return self.connection.info.get(AFTER_COMMIT)

    def _sql(self, construct: Any) -> str:
        if isinstance(construct, str):
            return construct
        return str(construct.compile(dialect=self.dialect))


class EgregoraDuckDBImpl(CountsWhatItDestroys, DuckDBImpl):
    __dialect__ = "duckdb"

    def _recreate(self, table_name: str, schema: str | None) -> Any:
        # duckdb-sqlalchemy answers an ALTER that DuckDB refuses on a table
        # with an explicit index (drop_column, alter_column of nullability,
        # type or name) with Alembic's batch recreate. Here create_copy_swap
        # wins: batch rebuilds from SQLAlchemy's reflection, which loses what
        # it can't see (measured: TIMESTAMP_NS, COLLATE, generated columns,
        # expression indexes), and checks no row first. Autogenerate never
        # writes such a plain op (capabilities.py); a hand-written one is
        # refused before anything runs.
        raise InvalidOperation(
            f"An ALTER of table {table_name} that DuckDB can't do in place: the table "
            "has an explicit index, and DuckDB then refuses to drop a column or change "
            "its nullability, type or name. Nothing was changed. Write the change as "
            "op.create_copy_swap with the table's complete new definition (alembic "
            "revision --autogenerate writes it), which rebuilds the table keeping its "
            "indexes, checking every row first."
        )

    def compare_type(self, inspector_column: Any, metadata_column: Any) -> bool:
        # Two spellings of one DuckDB type are no change: sa.Text() compiles to
        # TEXT, which DuckDB stores as VARCHAR, so without this `alembic check`
        # reported a changed type forever after the upgrade that "changed" it.
        if not super().compare_type(inspector_column, metadata_column):
            return False
        have = scratch_type_name(inspector_column.type)
        want = scratch_type_name(metadata_column.type)
        return have is None or want is None or have != want

    def compare_server_default(
        self,
        inspector_column: Any,
        metadata_column: Any,
        rendered_metadata_default: Any,
        rendered_inspector_default: Any,
    ) -> bool:
        # Alembic renders a plain string default (server_default="en") bare, as
        # en, while DuckDB reflects it as the literal 'en': without quoting it,
        # every string default reads as changed, and `alembic check` is never
        # clean.
        default = metadata_column.server_default
        if isinstance(default, sa.DefaultClause) and isinstance(default.arg, str):
            rendered_metadata_default = "'" + default.arg.replace("'", "''") + "'"
        return bool(
            super().compare_server_default(
                inspector_column,
                metadata_column,
                rendered_metadata_default,
                rendered_inspector_default,
            )
        )
