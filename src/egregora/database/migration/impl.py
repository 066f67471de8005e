"""What this project adds to Alembic's impl on every engine: the run, and an engine's answers.

Alembic chooses one impl class per dialect, by its ``__dialect__`` (the last
class defined for a dialect wins): :class:`~.duckdb.impl.EgregoraDuckDBImpl`
and :class:`~.postgresql.impl.EgregoraPostgresqlImpl` subclass this one, and
:mod:`.dialects` imports both. Whatever differs by engine is a question
asked of the impl Alembic chose, once, never of a dialect's name elsewhere:

- capabilities: ``planner`` (a rebuild or ALTER in place), ``in_place``,
  ``holds_rebuilds`` (a run writes each table once);
- around a run (environment.py): ``prepare`` before Alembic configures the
  context, ``start`` first thing in the run's transaction,
  ``after_commit_queue`` and ``finish_after_commit``;
- for a rebuild (copyswap/rebuild.py): ``dependents``, ``read_facts``,
  ``refuse_before_change``, ``before_operation``, ``execute_step``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl

from egregora.database.migration.capabilities import TableTraits, traits_from_table
from egregora.database.migration.catalog import InspectedCatalog, driver, reflect
from egregora.database.migration.copyswap.model import Change, Facts, Stage, Step
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.destroyed import record_dropped
from egregora.database.migration.options import RunOptions
from egregora.database.migration.postgresql.aftercommit import AfterCommit
from egregora.database.migration.readers import Readers, refuse_dropping_read_columns
from egregora.database.migration.runstate import RunState, current_revision, run_of

__all__ = ["EgregoraImpl"]


class EgregoraImpl(DefaultImpl):
    """Alembic's impl, with this project's run and each engine's answers (defaults here)."""

    #: the engine's create_copy_swap planner (copyswap/planner.PLANNERS)
    planner: ClassVar[type[StepPlanner]]
    #: altered where it stands (rows kept in place) rather than copied
    in_place: ClassVar[bool] = False
    #: a run holds its rebuilds back to write each table once (copyswap/held.py)
    holds_rebuilds: ClassVar[bool] = False
    #: the database keeps the names constraints are given (DuckDB forgets them)
    keeps_constraint_names: ClassVar[bool] = True
    #: how this database's catalog is read (catalog.py; DuckDB's: duckdb/catalog.py)
    catalog: ClassVar[type[InspectedCatalog]] = InspectedCatalog

    @property
    def run(self) -> RunState:
        """The run this impl's migration context belongs to (runstate.py)."""
        return run_of(self.context_opts)

    @property
    def conn(self) -> sa.Connection:
        """The connection of an online run (offline, ``--sql``, there is none)."""
        assert self.connection is not None, "an online migration has a connection"
        return self.connection

    def quote(self, name: str) -> str:
        return str(self.dialect.identifier_preparer.quote(name))

    # -- around a run (environment.py) ------------------------------------------------------

    @classmethod
    def prepare(cls, connection: sa.Connection, options: RunOptions, run: RunState) -> None:
        """Before Alembic configures the context: the connection's own settings (none)."""

    @classmethod
    def after_commit_queue(cls, connection: sa.Connection) -> list[AfterCommit] | None:
        """Where the run puts what follows its commit; None when nothing does."""
        return None

    @classmethod
    def finish_after_commit(cls, connection: sa.Connection, options: RunOptions) -> None:
        """What an earlier run (or this one) left to do after its commit (nothing)."""

    def start(self, options: RunOptions) -> None:
        """First thing in the run's transaction (nothing by default)."""

    def record_after_commit(self) -> None:
        """Last thing in the run's transaction: what follows the commit, written down (none)."""

    def write_after_commit(self) -> None:
        """Offline: what follows the commit, after the script's (nothing by default)."""

    # -- for autogenerate (autogenerate/rewrite.py) ------------------------------------------

    def table_traits(self, name: str) -> TableTraits:
        """What DuckDB's ALTER would meet on table ``name`` (capabilities.py), as reflected.

        Asked against every engine, so that one history serves both.
        """
        table = reflect(self.conn, name)
        return traits_from_table(table, bool(self.catalog(self.conn).referencing(name)))

    # -- for a rebuild (copyswap/rebuild.py) -------------------------------------------------

    def reflected(self, name: str) -> sa.Table:
        """Table ``name`` as SQLAlchemy reflects it now (the run's cache, while it holds one)."""
        tables = self.run.tables
        return tables.get(self.conn, name) if tables is not None else reflect(self.conn, name)

    def definition_of(self, name: str) -> sa.Table:
        """Table ``name`` as the database holds it, for a hand-written operation's rebuild."""
        return self.reflected(name)

    def dependents(self, name: str) -> list[sa.Table]:
        """The tables whose FOREIGN KEYs reference ``name``, directly or not, as they are."""
        return [self.reflected(d) for d in self.catalog(self.conn).referencing(name)]

    def read_facts(
        self, stages: Sequence[Stage], dependents: Sequence[sa.Table], inline_keys: bool
    ) -> Facts:
        """What the planner needs from the live catalog for ``stages`` (one table's)."""
        return Facts(tuple(dependents), inline_keys=inline_keys)

    def refuse_before_change(
        self, previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]
    ) -> None:
        """Refuse, before any change, what would fail or break after it (nothing by default)."""

    def refuse_foreign_key_options(self, tables: Iterable[sa.Table], outcome: str) -> None:
        """Refuse FOREIGN KEY options the database can't parse (it parses all by default)."""

    def record_constraint_names(self, target: sa.Table) -> None:
        """Keep the names of ``target``'s constraints where the database forgets them."""

    def before_operation(self, target: sa.Table, revision: str) -> None:
        """Before a rebuild reads the catalog for ``target`` (nothing by default)."""

    def take_back(self, names: Iterable[str], revision: str) -> None:
        """What the run put off until after its commit on ``names``: now (nothing by default)."""

    def execute_step(self, step: Step, revision: str) -> None:
        """Run one statement of a plan, as it is, on the driver's connection."""
        self.catalog_changed(step.sql)
        driver(self.conn).execute(step.sql)

    def catalog_changed(self, statement: str | None = None) -> None:
        """Our own ``statement`` (to the driver, unseen by SQLAlchemy) may change the tables
        it names; without one, any table (tablecache.py)."""
        tables = self.run.tables
        if tables is None:
            return
        if statement is None:
            tables.forget()
        else:
            tables.after(statement)

    def readers_of(self, table: str, columns: Iterable[str]) -> Readers:
        """The views and macros that read ``table.columns`` (readers.py; none known here)."""
        return []

    def offline_note(self, change: Change) -> str | None:
        """A comment for offline scripts, where the catalog can't be read (none)."""
        return None

    # -- Alembic's plain operations ----------------------------------------------------------

    def drop_column(
        self, table_name: str, column: Any, schema: str | None = None, **kw: Any
    ) -> None:
        """Refused when views or macros read the column; else counted, then dropped."""
        if not self.as_sql and self.connection is not None:
            readers = self.readers_of(table_name, [column.name])
            refuse_dropping_read_columns(readers, table_name, current_revision())
        self._record_dropped(table_name, [column.name])
        held = self.run.held  # its catalog reads concern this table only
        with held.touching([table_name]) if held is not None else contextlib.nullcontext():
            super().drop_column(table_name, column, schema=schema, **kw)

    def drop_table(self, table: Any, **kw: Any) -> None:
        """Counts what it drops (for dry runs and ``-x report=``), then drops it."""
        self._record_dropped(table.name, None)
        super().drop_table(table, **kw)

    def _record_dropped(self, table: str, columns: list[str] | None) -> None:
        report = self.run.report
        if report is None or self.as_sql or self.connection is None:
            return
        record_dropped(self.connection, report, current_revision(), table, columns)
