"""A run's DuckDB rebuilds, held back so that each table is written once (fusion.py).

Inside ``alembic upgrade`` (environment.py installs a :class:`PendingRebuilds`
on the connection) a DuckDB ``create_copy_swap`` is checked at once, as any
operation is, but not run: it is recorded as a :class:`~.fusion.Stage`. A
later rebuild of the same table becomes the next stage. What has been
recorded is written:

- before any statement that names the table (or its quarantine table, or a
  view or macro that reads it): a plain operation, ``op.execute``, a data
  migration through ``op.get_bind()``, a reflection. Such a statement is a
  *barrier* (the rules: :mod:`.barriers`): it must see the table as the
  revisions before it left it. A statement that reads the catalog
  (``sa.inspect(op.get_bind()).get_table_names()``) is one for every
  recorded table;
- before a rebuild of a table that a recorded rebuild references: the
  reference was judged against the parent as it was then;
- before a rebuild of a table other tables reference now: those are rebuilt
  with it, from the catalog, so it runs at once (as before);
- at the end of the run, before the commit, parents before children.

Outside such a run (an operation run on a bare MigrationContext, offline
``--sql``, PostgreSQL) every operation runs at once, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import (
    driver,
    referencing_closure,
    view_and_macro_sources,
)
from egregora.database.migration.copyswap.barriers import (
    barrier,
    may_change_readers,
    readers_of,
)
from egregora.database.migration.copyswap.engine import ENGINES
from egregora.database.migration.copyswap.fusedrun import judge, run_fused
from egregora.database.migration.copyswap.fusion import Stage, can_follow, plan_judged
from egregora.database.migration.copyswap.model import OnViolation, RowPolicy
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.planner import make_planner
from egregora.database.migration.copyswap.preflight import Violation
from egregora.database.migration.copyswap.run import current_definitions, run_online
from egregora.database.migration.definitions import referred_table
from egregora.database.migration.errors import (
    INTERRUPTED,
    InvalidOperation,
    MigrationFailed,
    SchemaError,
    first_line,
    is_interrupt,
)
from egregora.database.migration.report import RunReport, TableReport

#: connection.info key of the run's PendingRebuilds
PENDING_INFO = "egregora_pending_rebuilds"


@dataclass
class Verdict:
    """What judging a recorded table's stages found (a fail-mode run, see write)."""

    stages: int = 0  # how many of its stages were judged
    clean: bool = True  # none of them rejects a row
    keeps: bool = True  # none of them changes a value or a column
    output: str = ""  # the rows they would leave: what its children's rules read
    #: each stage's table report, for the run's report if the table is not written
    reports: list[TableReport] = field(default_factory=list)


class PendingRebuilds:
    """The recorded stages of a run, by table, in the order they were first recorded."""

    def __init__(self, collector: list[Violation] | None, report: RunReport | None) -> None:
        self.collector = collector
        self.report = report
        self.tables: dict[str, list[Stage]] = {}
        self.busy = False  # our own statements are no barrier
        self.verdicts: dict[str, Verdict] = {}  # fail mode: what judge_all found
        self.scratch: dict[str, list[str]] = {}  # the temporary tables judging made
        #: table reports of a refused run's tables judged and never written
        self.given_up: list[TableReport] = []
        #: views and macros: the names their SQL reads (read again after any DDL)
        self.readers: dict[str, set[str]] | None = None
        #: (revision, table) -> when its first operation came: the report's order
        self.sequence: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def own(self) -> Iterator[None]:
        was, self.busy = self.busy, True
        try:
            yield
        finally:
            self.busy = was

    def position(self, violation: Violation) -> int:
        """Where the operation that found ``violation`` came in its revision."""
        key = (violation.revision, violation.follows or violation.table)
        return self.sequence.get(key, len(self.sequence))

    def references(self, table: str) -> set[str]:
        """The tables a recorded table's final definition references."""
        target = self.tables[table][-1].operation.table
        return {referred_table(fk) for fk in target.foreign_key_constraints} - {table}

    def children(self, names: Iterable[str]) -> set[str]:
        """Recorded tables that reference any of ``names``."""
        wanted = set(names)
        return {t for t in self.tables if self.references(t) & wanted}

    def write(
        self,
        connection: sa.Connection,
        names: Iterable[str],
        *,
        midway: bool = True,
        catalog: bool = False,
    ) -> None:
        """Write the recorded tables ``names``, their recorded children, and their parents.

        ``midway``: the run goes on after this, and a later rebuild may
        reference these tables: their keys are declared in CREATE TABLE
        (as fast as adding them after, measured at 150,000 rows), which spares
        re-keying them then (a second copy, see run.rekey).

        A fail-mode run first judges everything recorded (scans, no copy).
        Once it is refused, it writes only what a later statement must read
        with changed values or without refused rows; at its end, nothing.
        ``catalog``: only the catalog is read (a refused run then writes
        nothing: its later revisions are judged on the catalog as it stands).
        """
        chosen = {n for n in names if n in self.tables}
        while True:  # children judged against what is about to change; parents they read
            more = self.children(chosen) | {p for t in chosen for p in self.references(t)}
            more = (more & set(self.tables)) - chosen
            if not more:
                break
            chosen |= more
        with self.own():
            judged = self.judging()
            if judged:
                self.judge_all(connection)
            refused = judged and bool(self.collector)
            if refused and catalog:
                return
            for table in self.order(chosen):
                with self.naming(table):
                    self.write_table(connection, table, midway, judged, refused)

    def write_table(
        self, connection: sa.Connection, table: str, midway: bool, judged: bool, refused: bool
    ) -> None:
        """One table of :meth:`write`: written, written as if quarantining, or given up."""
        verdict = self.verdicts.pop(table, None)
        if not refused:
            self.write_one(connection, table, midway, judged=judged)
        elif midway and not (verdict is not None and verdict.clean and verdict.keeps):
            # a later statement reads it: as if quarantining; judging has collected its
            # violations, counted what it drops and reported it already
            self.write_one(connection, table, midway, collector=[], reported=False)
            self.keep_reports(verdict, moved=False)
        else:  # refused: the run is rolled back, no copy is needed
            del self.tables[table]
            self.keep_reports(verdict, moved=True)
        self.drop_scratch(connection, table)

    def keep_reports(self, verdict: Verdict | None, moved: bool) -> None:
        """A refused run's judged table: its stages' reports, as if each had run.

        ``moved``: the table is not written, so its stages' rejected rows are
        not in any quarantine table: they are counted as the revisions' all the
        same (``given_up``), as a run without fusion would have moved them.
        """
        if self.report is None or verdict is None:
            return
        self.report.tables += verdict.reports
        if moved:
            self.given_up += verdict.reports

    def judging(self) -> bool:
        """A fail-mode run that collects every violation before refusing (env.py's)."""
        stages = [s for recorded in self.tables.values() for s in recorded]
        return self.collector is not None and all(s.on_violation == "fail" for s in stages)

    def judge_all(self, connection: sa.Connection) -> None:
        """Judge the stages not judged yet, parents first; collect their violations."""
        for table in self.order(set(self.tables)):
            with self.naming(table):
                self.judge_table(connection, table)

    @contextlib.contextmanager
    def naming(self, table: str) -> Iterator[None]:
        """A database error while writing or judging ``table``: one paragraph naming it.

        The run's transaction rolls back. (Raised at the end of the run, or
        at a barrier, it would otherwise surface as the driver's traceback.)
        """
        revisions = ", ".join(dict.fromkeys(s.revision for s in self.tables.get(table, [])))
        try:
            yield
        except SchemaError:
            raise
        except Exception as exc:
            if is_interrupt(exc):
                raise MigrationFailed(INTERRUPTED) from None
            raise MigrationFailed(
                f"create_copy_swap on {table} (from {revisions}) failed: "
                f"{first_line(exc)}. The migration was rolled back; the database is unchanged."
            ) from None

    def judge_table(self, connection: sa.Connection, table: str) -> None:
        """Judge ``table``'s stages not judged yet (judge_all)."""
        stages = self.tables[table]
        verdict = self.verdicts.setdefault(table, Verdict())
        if verdict.stages == len(stages):
            return
        parents = {t: v.output for t, v in self.verdicts.items() if t != table and v.output}
        plans = plan_judged(stages, dialect=connection.dialect, parents=parents)
        new = plans[verdict.stages :]
        clean = judge(connection, new, self.collector, self.report, verdict.reports)
        verdict.clean &= clean
        verdict.keeps &= all(p.keeps_values for p in new)
        verdict.stages, verdict.output = len(stages), plans[-1].output
        self.scratch.setdefault(table, []).extend(p.rejected for p in new)

    def drop_scratch(self, connection: sa.Connection, table: str) -> None:
        """The judged row ids of a table written (or given up): no longer read."""
        quote = connection.dialect.identifier_preparer.quote
        for name in self.scratch.pop(table, []):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")

    def order(self, chosen: set[str]) -> list[str]:
        """Parents before children, else in the order first recorded."""
        done: list[str] = []
        waiting = [t for t in self.tables if t in chosen]
        while waiting:
            ready = [t for t in waiting if not (self.references(t) & set(waiting))]
            table = (ready or waiting)[0]  # a cycle can't be: DuckDB refuses one
            done.append(table)
            waiting.remove(table)
        return done

    def write_one(
        self,
        connection: sa.Connection,
        table: str,
        midway: bool,
        *,
        judged: bool = False,
        collector: list[Violation] | None = None,
        reported: bool = True,
    ) -> None:
        """Write one table's stages. ``collector``: instead of the run's (see write);
        ``reported``: into the run's report (not when judging reported it)."""
        stages = self.tables.pop(table)
        collector = self.collector if collector is None else collector
        report = self.report if reported else None
        # keys declared in CREATE TABLE when a rebuild still to come may reference it
        inline = midway or bool(self.children([table]))
        if len(stages) > 1:
            run_fused(connection, stages, collector, report, inline_keys=inline, judged=judged)
            return
        stage = stages[0]
        run_online(
            connection,
            stage.operation,
            stage.on_violation,
            stage.revision,
            collector,
            report,
            stage.policy,
            inline_keys=inline,
            previous=stage.previous,
            judged=judged,
        )

    def write_all(self, connection: sa.Connection) -> None:
        """The end of the run: everything recorded, before the commit."""
        self.write(connection, list(self.tables), midway=False)

    def add(
        self,
        connection: sa.Connection,
        operation: CreateCopySwapOp,
        on_violation: str,
        revision: str,
        policy: RowPolicy | None,
    ) -> bool:
        """Add ``operation`` as its table's next stage; False when it must run now (record)."""
        name = operation.table.name
        mode: OnViolation = "quarantine" if on_violation == "quarantine" else "fail"
        children = self.children([name]) - {name}
        if children:  # they were judged against this table as it is now
            self.write(connection, children)
        stages = self.tables.get(name)
        if stages and not can_follow(stages[-1], operation, mode):
            self.write(connection, [name])
            stages = None
        if stages:
            previous = stages[-1].operation.table
            _check_given_previous(operation, previous)
        else:
            referencing = referencing_closure(connection, name)
            if referencing:  # rebuilt now, with them: as the run has left them so far
                self.write(connection, [t for t in referencing if t in self.tables])
                return False
            previous, _ = current_definitions(connection, operation)
        make_planner(  # the checks any plan passes first; raises on an invalid operation
            previous,
            operation.table,
            dialect=connection.dialect,
            column_map=operation.column_map,
            on_violation=on_violation,
            policy=policy,
        )
        self.sequence.setdefault((revision, name), len(self.sequence))
        self.tables.setdefault(name, []).append(Stage(operation, revision, mode, policy, previous))
        return True

    def barrier(self, connection: sa.Connection, statement: str) -> None:
        """Before ``statement`` runs: write the held tables it reads or writes (barriers.py)."""
        if self.busy:
            return
        if may_change_readers(statement):
            self.readers = None
        if not self.tables:
            return
        if self.readers is None:
            self.readers = readers_of(view_and_macro_sources(driver(connection)))
        found = barrier(statement, self.tables, self.readers)
        if found.tables:
            self.write(connection, found.tables)
        if found.reads_catalog:
            self.write(connection, list(self.tables), catalog=True)


def installed(connection: sa.Connection) -> PendingRebuilds | None:
    found = connection.info.get(PENDING_INFO)
    return found if isinstance(found, PendingRebuilds) else None


@contextlib.contextmanager
def holding_rebuilds(
    connection: sa.Connection,
    collector: list[Violation] | None,
    report: RunReport | None,
    *,
    enabled: bool = True,
) -> Iterator[PendingRebuilds | None]:
    """While the block runs, DuckDB rebuilds are recorded; the caller writes them at its end.

    Only where the engine rebuilds tables (DuckDB), unless ``enabled`` is
    false (``-x fuse=false``); elsewhere nothing is held (yields None).
    """
    engine = ENGINES.get(connection.dialect.name)
    if not enabled or engine is None or not engine.holds_rebuilds:
        yield None
        return
    pending = PendingRebuilds(collector, report)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        pending.barrier(connection, statement)

    info = connection.info  # still there after an interrupt invalidates the connection
    info[PENDING_INFO] = pending
    sa.event.listen(connection, "before_cursor_execute", before)
    try:
        yield pending
    finally:
        sa.event.remove(connection, "before_cursor_execute", before)
        info.pop(PENDING_INFO, None)


def record(
    connection: sa.Connection,
    operation: CreateCopySwapOp,
    on_violation: str,
    revision: str,
    policy: RowPolicy | None,
) -> bool:
    """Record ``operation`` to be written later; False when it must run now.

    It is checked now as it would be if it ran (the table exists, previous=
    matches, the definition is valid), so an error still names its revision.
    """
    pending = installed(connection)
    if pending is None or pending.busy:
        return False
    with pending.own():
        return pending.add(connection, operation, on_violation, revision, policy)


def _check_given_previous(operation: CreateCopySwapOp, previous: sa.Table) -> None:
    given = operation.previous
    if given is not None and set(given.columns.keys()) != set(previous.columns.keys()):
        raise InvalidOperation(
            f"create_copy_swap on {given.name}: previous= describes columns "
            f"{', '.join(given.columns.keys())}, but after this run's earlier operations the "
            f"table has {', '.join(previous.columns.keys())}. Check the revision's previous= "
            "against the revision before it."
        )
